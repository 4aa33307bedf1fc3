"""PyTorch reference figures on the GPU the WebGPU bench ran on: torch.matmul on the GEMM shapes of
bench/ops_matmul.ts and F.scaled_dot_product_attention on the attention shapes of
bench/ops_attention.ts, in f32 (TF32 off), TF32 (matmul only) and f16. Appends JSON lines in the
bench's format and prints a Markdown table.

    python3 bench/torch_reference.py [results.jsonl]
"""
import datetime
import json
import statistics
import sys

import torch
import torch.nn.functional as F

# (name, m, k, n): x [m, k] @ w.T, w [n, k], as the Linear layers run them.
GEMMS = [
    ("stage C channelwise fc1", 1152, 1536, 6144),
    ("stage C channelwise fc2", 1152, 6144, 1536),
    ("VQGAN MLP fc1 (256×256)", 65536, 384, 1536),
    ("VQGAN MLP fc2 (256×256)", 65536, 1536, 384),
    ("CLIP-bigG MLP fc1 (2 × 77 tokens)", 154, 1280, 5120),
]

# (name, batch, heads, head dim, queries, keys, causal)
ATTENTION = [
    ("stage C attention (24×24 latent + 77 text)", 2, 24, 64, 576, 653, False),
    ("stage B level 1 attention (64×64 + 77 text)", 1, 10, 64, 4096, 4173, False),
    ("CLIP-bigG causal self-attention", 2, 20, 64, 77, 77, True),
]


def time_ms(fn, min_total_ms=200.0):
    """Median of 5 batches of back-to-back calls, timed with CUDA events, after warm-up."""
    for _ in range(3):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    fn()
    end.record()
    end.synchronize()
    reps = max(1, min(200, int(min_total_ms / max(start.elapsed_time(end), 1e-3))))
    times = []
    for _ in range(5):
        start.record()
        for _ in range(reps):
            fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / reps)
    return statistics.median(times)


def main():
    out_file = sys.argv[1] if len(sys.argv) > 1 else None
    device = torch.device("cuda")
    adapter = torch.cuda.get_device_name(device)
    context = {
        "at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
        "adapter": adapter,
        "runtime": f"torch {torch.__version__} cuda {torch.version.cuda}",
        "mode": "reference",
    }
    rows = []
    for precision in ("f32", "tf32", "f16"):
        torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
        dtype = torch.float16 if precision == "f16" else torch.float32
        for name, m, k, n in GEMMS:
            x = torch.randn(m, k, device=device, dtype=dtype)
            w = torch.randn(n, k, device=device, dtype=dtype) / k**0.5
            ms = time_ms(lambda: torch.matmul(x, w.t()))
            rows.append({"suite": "torch", "name": f"torch.matmul {name}", "shape": f"{m}x{k}x{n}", "dtype": precision,
                         "ms": ms, "gflops": 2 * m * k * n / ms / 1e6})
    torch.backends.cuda.matmul.allow_tf32 = False
    for precision, dtype in (("f32", torch.float32), ("f16", torch.float16)):
        for name, batch, heads, dim, lq, lk, causal in ATTENTION:
            q = torch.randn(batch, heads, lq, dim, device=device, dtype=dtype)
            k = torch.randn(batch, heads, lk, dim, device=device, dtype=dtype)
            v = torch.randn(batch, heads, lk, dim, device=device, dtype=dtype)
            ms = time_ms(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=causal))
            rows.append({"suite": "torch", "name": f"SDPA {name}", "shape": f"b{batch} h{heads}×{dim} q{lq} k{lk}",
                         "dtype": precision, "ms": ms, "gflops": 4 * batch * heads * lq * lk * dim / ms / 1e6,
                         **({"note": "causal; FLOPs counted dense"} if causal else {})})

    print(f"adapter: {adapter} ({context['runtime']})\n")
    print("| name | shape | dtype | ms | GFLOP/s |\n| --- | --- | --- | ---: | ---: |")
    for r in rows:
        print(f"| {r['name']} | {r['shape']} | {r['dtype']} | {r['ms']:.3f} | {r['gflops']:.0f} |")
    if out_file:
        with open(out_file, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps({**context, **r}, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
