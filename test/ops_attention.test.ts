import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { attention, type AttentionKernel, type AttentionOptions, type AttentionTiles } from '../src/ops/attention.js';
import { openFileSource } from '../src/platform/file.js';
import { bucketSize, type PoolStats } from '../src/runtime/buffer_pool.js';
import type { DType } from '../src/runtime/dtype.js';
import type { Tensor } from '../src/runtime/tensor.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { getRuntime } from './helpers/gpu.js';
import { nchwToNhwc, nhwcToNchw } from './helpers/layout.js';

const FIXTURES = new URL('./fixtures/ops/', import.meta.url).pathname;
const F32: Tolerance = { atol: 1e-6, rtol: 1e-5 }; // golden README §2, ops/*
const F16: Tolerance = { atol: 2e-3, rtol: 4e-3 }; // golden README §2, ops/f16_*
const F32_MIN = -3.4028234663852886e38; // torch.finfo(torch.float32).min

interface Golden {
  f32(name: string): Float32Array;
  ints(name: string): number[];
  shape(name: string): number[];
}

/** Reads every tensor of a fixture (they are small) and closes it. */
async function golden(name: string): Promise<Golden> {
  const file = await SafetensorsFile.open(await openFileSource(join(FIXTURES, `${name}.safetensors`)));
  const floats = new Map<string, Float32Array>();
  const ints = new Map<string, number[]>();
  try {
    for (const [tensor, info] of file.tensors) {
      if (info.dtype === 'I64') ints.set(tensor, await file.readI64AsNumbers(tensor));
      else floats.set(tensor, await file.readF32(tensor));
    }
  } finally {
    await file.close();
  }
  const get = <V>(map: Map<string, V>, tensor: string): V => {
    const value = map.get(tensor);
    if (value === undefined) throw new Error(`${name}: no tensor ${tensor}`);
    return value;
  };
  return {
    f32: (tensor) => get(floats, tensor),
    ints: (tensor) => get(ints, tensor),
    shape: (tensor) => [...file.tensors.get(tensor)!.shape],
  };
}

// ---- host references (f64) ----------------------------------------------------------------

/** y = x·wᵀ + b over rows of x ([rows, inF] → [rows, outF]), as torch.nn.Linear. */
function hostLinear(
  x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, outF: number,
): Float64Array {
  const inF = w.length / outF;
  const rows = x.length / inF;
  const y = new Float64Array(rows * outF);
  for (let r = 0; r < rows; r++) {
    for (let o = 0; o < outF; o++) {
      let acc = b ? b[o] : 0;
      for (let i = 0; i < inF; i++) acc += x[r * inF + i] * w[o * inF + i];
      y[r * outF + o] = acc;
    }
  }
  return y;
}

/** LayerNorm over the last dim without affine (WuerstchenLayerNorm over channels). */
function hostLayerNorm(x: ArrayLike<number>, width: number, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length / width; r++) {
    let mean = 0;
    for (let c = 0; c < width; c++) mean += x[r * width + c];
    mean /= width;
    let variance = 0;
    for (let c = 0; c < width; c++) variance += (x[r * width + c] - mean) ** 2;
    variance /= width;
    for (let c = 0; c < width; c++) y[r * width + c] = (x[r * width + c] - mean) / Math.sqrt(variance + eps);
  }
  return y;
}

const hostSilu = (x: ArrayLike<number>) => Float64Array.from(x, (v) => v / (1 + Math.exp(-v)));

interface HostMasks {
  causal?: boolean;
  keep?: ArrayLike<number>;
}

/**
 * Rows `rows` of torch's eager attention: scores in f64, the additive masks added as torch does in
 * f32 (each mask finfo.min, so a score + one mask rounds to finfo.min and two give −inf), softmax, ·v.
 * Returns [B, rows.length, H·D].
 */
function hostAttention(
  q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>,
  dims: { batch: number; lq: number; lk: number; heads: number }, masks: HostMasks = {}, rows?: number[],
): Float64Array {
  const { batch, lq, lk, heads } = dims;
  const channels = q.length / (batch * lq);
  const d = channels / heads;
  const scale = 1 / Math.sqrt(d);
  const queries = rows ?? Array.from({ length: lq }, (_, i) => i);
  const out = new Float64Array(batch * queries.length * channels);
  const scores = new Float64Array(lk);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      queries.forEach((i, row) => {
        let max = -Infinity;
        for (let j = 0; j < lk; j++) {
          let s = 0;
          const qRow = (b * lq + i) * channels + h * d;
          const kRow = (b * lk + j) * channels + h * d;
          for (let c = 0; c < d; c++) s += q[qRow + c] * k[kRow + c];
          let mask = 0;
          if (masks.causal && j > i) mask = Math.fround(mask + F32_MIN);
          if (masks.keep && masks.keep[b * lk + j] !== 1) mask = Math.fround(mask + F32_MIN);
          scores[j] = mask === 0 ? s * scale : Math.fround(Math.fround(s * scale) + mask);
          max = Math.max(max, scores[j]);
        }
        let sum = 0;
        for (let j = 0; j < lk; j++) sum += (scores[j] = Math.exp(scores[j] - max));
        for (let c = 0; c < d; c++) {
          let acc = 0;
          for (let j = 0; j < lk; j++) acc += scores[j] * v[(b * lk + j) * channels + h * d + c];
          out[(b * queries.length + row) * channels + h * d + c] = acc / sum;
        }
      });
    }
  }
  return out;
}

/** Deterministic inputs in [-amplitude, amplitude). */
function seeded(n: number, seed: number, amplitude = 1): Float32Array {
  let state = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return ((state / 2 ** 32) * 2 - 1) * amplitude;
  });
}

const KERNELS: AttentionKernel[] = ['flash', 'gemm'];

// ---- GPU runner -----------------------------------------------------------------------------

interface Inputs {
  q: ArrayLike<number>;
  k: ArrayLike<number>;
  v: ArrayLike<number>;
  batch: number;
  lq: number;
  lk: number;
  channels: number;
  keep?: ArrayLike<number>;
}

async function runAttention(
  inputs: Inputs, dtype: DType, options: Omit<AttentionOptions, 'keyPaddingMask'>, maskDType: DType = 'f32',
): Promise<Float32Array> {
  const rt = await getRuntime();
  return rt.scope(async () => {
    const { batch, lq, lk, channels } = inputs;
    const q = rt.upload(inputs.q, [batch, lq, channels], dtype);
    const k = rt.upload(inputs.k, [batch, lk, channels], dtype);
    const v = rt.upload(inputs.v, [batch, lk, channels], dtype);
    const keep = inputs.keep && rt.upload(inputs.keep, [batch, lk], maskDType);
    const out = attention(rt, q, k, v, { ...options, keyPaddingMask: keep });
    expect(out.shape).toEqual([batch, lq, channels]);
    expect(out.dtype).toBe(rt.storageDType(dtype));
    return rt.read(out);
  });
}

/**
 * Attention at Stage B's size, 1024 queries × 4173 keys × 2 heads of 64 (sharp: scores ~N(0, 1.3²)):
 * `attend` runs on uploaded q, k and v, `checkPool` sees the pool before and after it, and the
 * result's `rows` must match f64.
 */
async function stageBSized(
  rows: number[],
  attend: (q: Tensor, k: Tensor, v: Tensor) => Tensor,
  checkPool: (before: PoolStats, after: PoolStats, out: Tensor) => void,
): Promise<void> {
  const rt = await getRuntime();
  const batch = 1, lq = 1024, lk = 4173, heads = 2, channels = 128;
  const q = seeded(batch * lq * channels, 11, 4);
  const k = seeded(batch * lk * channels, 12);
  const v = seeded(batch * lk * channels, 13);
  const got = await rt.scope(async () => {
    const tq = rt.upload(q, [batch, lq, channels]);
    const tk = rt.upload(k, [batch, lk, channels]);
    const tv = rt.upload(v, [batch, lk, channels]);
    rt.flush();
    const before = rt.pool.stats();
    const out = attend(tq, tk, tv);
    checkPool(before, rt.pool.stats(), out);
    return rt.read(out);
  });
  const sampled = Float32Array.from(rows.flatMap((i) => Array.from(got.subarray(i * channels, (i + 1) * channels))));
  expectClose(sampled, hostAttention(q, k, v, { batch, lq, lk, heads }, {}, rows), F32, 'sampled rows');
}

// First in the file: the runtime sleeps on readback for (work × seconds per work learned so far),
// and on lavapipe the learned rate is inflated by pipelines compiled at their first use, which
// would make this big dispatch wait minutes behind the small variants.
describe('attention at Stage B size', () => {
  it('flash, 1024 queries × 4173 keys × 2 heads of 64: sampled rows match f64, only the output is allocated', async () => {
    const rt = await getRuntime();
    await stageBSized([0, 1, 63, 64, 200, 447, 510, 1000, 1022, 1023], (q, k, v) => attention(rt, q, k, v, { heads: 2, kernel: 'flash' }), (before, after, out) => {
      expect(after.created - before.created).toBeLessThanOrEqual(1);
      expect(after.bytesAllocated - before.bytesAllocated).toBeLessThanOrEqual(bucketSize(out.byteSize));
      // One head's f32 scores alone would take lq·lk·4 = 17 MB; q, k, v and out take 6 MB.
      expect(after.peakBytesAllocated).toBeLessThan(1024 * 4173 * 4);
    });
  });

  it('gemm in 4 MiB windows, the same shape: sampled rows match f64, scores stay bounded', async () => {
    const rt = await getRuntime();
    const windowBytes = 4 * 2 ** 20; // 125 queries of 2 heads × 4176 (padded) f32 scores: 9 windows
    const attend = (q: Tensor, k: Tensor, v: Tensor) => attention(rt, q, k, v, { heads: 2, kernel: 'gemm', scoreWindowBytes: windowBytes });
    await stageBSized([0, 1, 124, 125, 126, 447, 510, 1000, 1023], attend, (before, after) => {
      // q, k, v with heads split, the heads' output and the result, one window of scores and one of
      // probabilities, in the pool's size buckets (≤ 12.5% over above 1 MiB): 9 windows reuse them.
      const tensors = 4 * 128 * (2 * 1024 + 2 * 4173 + 1024) + 2 * windowBytes;
      expect(after.bytesAllocated - before.bytesAllocated).toBeLessThanOrEqual(1.25 * tensors);
    });
  });
});

// ---- golden cases ---------------------------------------------------------------------------

describe('attention on diffusers Attention goldens (q, k, v after to_q/to_k/to_v → to_out on the host)', () => {
  const cases = [
    { name: 'attention_tokens_self_1', heads: 4 },
    { name: 'attention_tokens_cross_0', heads: 3 },
  ];
  for (const { name, heads } of cases) {
    for (const [dtype, tol] of [['f32', F32], ['f16', F16]] as const) {
      it.each(KERNELS)(`${name} (${dtype}, %s)`, async (kernel) => {
        const g = await golden(name);
        const [batch, lq, channels] = g.shape('out.q');
        const lk = g.shape('out.k')[1];
        const inputs = { q: g.f32('out.q'), k: g.f32('out.k'), v: g.f32('out.v'), batch, lq, lk, channels };
        const merged = await runAttention(inputs, dtype, { heads, kernel });
        const out = hostLinear(merged, g.f32('param.to_out.0.weight'), g.f32('param.to_out.0.bias'), channels);
        expectClose(out, g.f32('out'), tol, `${name} out`);
      });
    }
  }
});

describe('attention on Würstchen AttnBlock goldens (self tokens + text tokens as keys, Lk = Lq + Lkv)', () => {
  const cases = [
    { name: 'attnblock_selfcross_0', heads: 4 },
    { name: 'attnblock_selfcross_1', heads: 2 },
  ];
  for (const { name, heads } of cases) {
    for (const [dtype, tol] of [['f32', F32], ['f16', F16]] as const) {
      it.each(KERNELS)(`${name}: q, k, v → attn_heads_merged (${dtype}, %s)`, async (kernel) => {
        const g = await golden(name);
        const [batch, lq, channels] = g.shape('out.q');
        const lk = g.shape('out.k')[1];
        const inputs = { q: g.f32('out.q'), k: g.f32('out.k'), v: g.f32('out.v'), batch, lq, lk, channels };
        const merged = await runAttention(inputs, dtype, { heads, kernel });
        expectClose(merged, g.f32('out.attn_heads_merged'), tol, `${name} attn_heads_merged`);
      });
    }
  }

  it.each(KERNELS)('f16_attnblock_0: the whole block with f16 q/k/v and f16 attention (%s), the rest on the host in f64', async (kernel) => {
    const g = await golden('f16_attnblock_0');
    const [batch, channels, height, width] = g.shape('x');
    const [, lkv] = g.shape('kv');
    const lq = height * width;
    const p = (name: string) => g.f32(`param.attention.${name}`);
    const x = nchwToNhwc(g.f32('x'), [batch, channels, height, width]);
    const normX = hostLayerNorm(x, channels, 1e-6);
    const kvMapper = [g.f32('param.kv_mapper.1.weight'), g.f32('param.kv_mapper.1.bias')] as const;
    const kvMapped = hostLinear(hostSilu(g.f32('kv')), ...kvMapper, channels);
    const kv = new Float64Array(batch * (lq + lkv) * channels);
    for (let b = 0; b < batch; b++) {
      kv.set(normX.subarray(b * lq * channels, (b + 1) * lq * channels), b * (lq + lkv) * channels);
      kv.set(kvMapped.subarray(b * lkv * channels, (b + 1) * lkv * channels), (b * (lq + lkv) + lq) * channels);
    }
    const inputs = {
      q: hostLinear(normX, p('to_q.weight'), p('to_q.bias'), channels),
      k: hostLinear(kv, p('to_k.weight'), p('to_k.bias'), channels),
      v: hostLinear(kv, p('to_v.weight'), p('to_v.bias'), channels),
      batch, lq, lk: lq + lkv, channels,
    };
    const merged = await runAttention(inputs, 'f16', { heads: 4, kernel });
    const attended = hostLinear(merged, p('to_out.0.weight'), p('to_out.0.bias'), channels);
    const tokens = x.map((value, i) => value + attended[i]);
    expectClose(nhwcToNchw(tokens, [batch, height, width, channels]), g.f32('out'), F16, 'f16_attnblock_0 out');
  });
});

describe('attention with CLIP causal + padding masks (projections on the host)', () => {
  const cases = [
    { name: 'clip_attention_causal_padding_0', heads: 4 }, // valid lengths 5 and 77
    { name: 'clip_attention_causal_padding_1', heads: 2 }, // valid lengths 1, 7 and 12
  ];
  for (const { name, heads } of cases) {
    for (const [dtype, tol] of [['f32', F32], ['f16', F16]] as const) {
      it.each(KERNELS)(`${name} (${dtype}, mask stored as ${dtype}, %s)`, async (kernel) => {
        const g = await golden(name);
        const [batch, lq, channels] = g.shape('hidden_states');
        const x = g.f32('hidden_states');
        const proj = (which: string) =>
          hostLinear(x, g.f32(`param.${which}_proj.weight`), g.f32(`param.${which}_proj.bias`), channels);
        const keep = g.ints('attention_mask_2d');
        const inputs = { q: proj('q'), k: proj('k'), v: proj('v'), batch, lq, lk: lq, channels, keep };
        const merged = await runAttention(inputs, dtype, { heads, causal: true, kernel }, dtype);
        const out = hostLinear(merged, g.f32('param.out_proj.weight'), g.f32('param.out_proj.bias'), channels);
        expectClose(out, g.f32('out'), tol, `${name} out`);
      });
    }
  }
});

// ---- variants against the host reference ----------------------------------------------------

describe('attention variants against the f64 host reference (torch mask arithmetic)', () => {
  // 37 queries and 29 keys fit no tile; head dim 16 (4 vec4 per row), 3 heads, batch 2.
  const batch = 2, lq = 37, lk = 29, heads = 3, channels = 48;
  const base = {
    q: seeded(batch * lq * channels, 1), k: seeded(batch * lk * channels, 2), v: seeded(batch * lk * channels, 3),
    batch, lq, lk, channels,
  };
  // Batch 0: right padding (CLIP); batch 1: left padding, so under the causal mask queries 0 and 1
  // see no key free of masks and torch spreads their weight evenly over the keys hit once.
  const keep = Array.from({ length: batch * lk }, (_, i) => (i < lk ? Number(i < 20) : Number(i - lk >= 2)));
  const dims = { batch, lq, lk, heads };
  const tilings: AttentionTiles[] = [
    { queries: 32, keys: 16 },
    { queries: 64, keys: 32 },
    { queries: 16, keys: 8 },
    { queries: 64, keys: 4 },
  ];
  const maskings: { label: string; masks: HostMasks }[] = [
    { label: 'no mask', masks: {} },
    { label: 'causal', masks: { causal: true } },
    { label: 'padding', masks: { keep } },
    { label: 'causal + padding', masks: { causal: true, keep } },
  ];
  maskings.forEach(({ label, masks }, n) => {
    const tiles = tilings[n];
    it(`${label}, tiles ${tiles.queries}×${tiles.keys}`, async () => {
      const got = await runAttention({ ...base, keep: masks.keep }, 'f32', { heads, causal: masks.causal, tiles });
      expectClose(got, hostAttention(base.q, base.k, base.v, dims, masks), F32, label);
    });
  });

  // The gemm kernel in windows of 8 queries (3 heads × 32 keys, 29 padded to 4, × 4 bytes per
  // query of a batch entry): the causal mask must follow each window's first query.
  maskings.forEach(({ label, masks }) => {
    it(`${label}, gemm in windows of 8 queries`, async () => {
      const options = { heads, causal: masks.causal, kernel: 'gemm' as const, scoreWindowBytes: 8 * batch * heads * 32 * 4 };
      const got = await runAttention({ ...base, keep: masks.keep }, 'f32', options);
      expectClose(got, hostAttention(base.q, base.k, base.v, dims, masks), F32, label);
    });
  });

  it.each(KERNELS)('a row whose keys are all padding gets uniform weights, as torch does with finfo.min (%s)', async (kernel) => {
    const allPadded = Array.from({ length: batch * lk }, (_, i) => Number(i < lk));
    const got = await runAttention({ ...base, keep: allPadded }, 'f32', { heads, kernel });
    const want = hostAttention(base.q, base.k, base.v, dims, { keep: allPadded });
    expectClose(got, want, F32, 'fully padded batch');
  });

  it.each(KERNELS)('takes an explicit scale (%s)', async (kernel) => {
    const got = await runAttention(base, 'f32', { heads, scale: 0.5, kernel });
    // scale 0.5 on head dim 16 equals the default scale on q doubled.
    const want = hostAttention(base.q.map((x) => 2 * x), base.k, base.v, dims);
    expectClose(got, want, F32, 'scale 0.5');
  });
});

describe('attention input checks', () => {
  it('rejects a head dim that is not a multiple of 4', async () => {
    const rt = await getRuntime();
    const x = rt.upload(new Float32Array(2 * 3 * 18), [2, 3, 18]);
    expect(() => attention(rt, x, x, x, { heads: 3 })).toThrow('attention: head dim 6 is not a multiple of 4');
    x.dispose();
  });

  it('rejects channels that do not split into the heads', async () => {
    const rt = await getRuntime();
    const x = rt.upload(new Float32Array(2 * 3 * 16), [2, 3, 16]);
    expect(() => attention(rt, x, x, x, { heads: 3 })).toThrow('attention: 16 channels do not split into 3 heads');
    x.dispose();
  });

  it('rejects k and v of different lengths', async () => {
    const rt = await getRuntime();
    const q = rt.upload(new Float32Array(2 * 3 * 16), [2, 3, 16]);
    const k = rt.upload(new Float32Array(2 * 5 * 16), [2, 5, 16]);
    expect(() => attention(rt, q, k, q, { heads: 2 })).toThrow(
      'attention: q [2, 3, 16], k [2, 5, 16] and v [2, 3, 16] disagree in batch, key count or channels',
    );
    q.dispose();
    k.dispose();
  });

  it('rejects a padding mask of the wrong shape', async () => {
    const rt = await getRuntime();
    const q = rt.upload(new Float32Array(2 * 3 * 16), [2, 3, 16]);
    const k = rt.upload(new Float32Array(2 * 5 * 16), [2, 5, 16]);
    const mask = rt.upload(new Float32Array(2 * 3), [2, 3]);
    expect(() => attention(rt, q, k, k, { heads: 2, keyPaddingMask: mask })).toThrow(
      'attention: keyPaddingMask must be [2, 5]; got [2, 3]',
    );
    for (const t of [q, k, mask]) t.dispose();
  });

  it('rejects a key tile that is not a multiple of 4', async () => {
    const rt = await getRuntime();
    const x = rt.upload(new Float32Array(1 * 2 * 16), [1, 2, 16]);
    expect(() => attention(rt, x, x, x, { heads: 1, tiles: { queries: 32, keys: 6 } })).toThrow(
      'attention: tiles need a positive query count and a key count that is a multiple of 4; got 32 × 6',
    );
    x.dispose();
  });

  it('rejects tiles with the gemm kernel and a score window with the flash kernel', async () => {
    const rt = await getRuntime();
    const x = rt.upload(new Float32Array(1 * 2 * 16), [1, 2, 16]);
    expect(() => attention(rt, x, x, x, { heads: 1, kernel: 'gemm', tiles: { queries: 32, keys: 16 } })).toThrow(
      "attention: tiles apply to the 'flash' kernel only",
    );
    expect(() => attention(rt, x, x, x, { heads: 1, kernel: 'flash', scoreWindowBytes: 1024 })).toThrow(
      "attention: scoreWindowBytes applies to the 'gemm' kernel only",
    );
    x.dispose();
  });

  it('rejects tiles that overflow workgroup memory', async () => {
    const rt = await getRuntime();
    const x = rt.upload(new Float32Array(1 * 2 * 256), [1, 2, 256]);
    const limit = rt.limits.maxComputeWorkgroupStorageSize;
    const invocations = Math.min(rt.limits.maxComputeInvocationsPerWorkgroup, rt.limits.maxComputeWorkgroupSizeX);
    const bytes = 2 * 1024 * 256 * 4 + 1024 * 4;
    expect(() => attention(rt, x, x, x, { heads: 1, tiles: { queries: 32, keys: 1024 } })).toThrow(
      `attention: tiles of 32 queries × 1024 keys need 32 invocations and ${bytes} bytes of workgroup memory; ` +
        `this device allows ${invocations} and ${limit}`,
    );
    x.dispose();
  });
});
