// Elementwise ops over contiguous tensors of type T, computed in f32.
// Binary ops: one OP_* flag selects add, mul, sub or lerp. Both inputs have `n` elements, or `b` has
// `b_period` elements and repeats (broadcast of a trailing block, e.g. a per-channel bias in NHWC).
// OP_LERP is torch.lerp(a, b, weight) for a scalar weight, bit for bit as torch's CPU kernel:
// a + w·(b − a) for |w| < 0.5, else b − (1 − w)·(b − a), each a single fused multiply-add.

struct Params {
  n: u32,
  b_period: u32,
  lerp_weight: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<T>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let x = f32(a[i]);
  let y = f32(b[i % params.b_period]);
#if OP_ADD
  out[i] = T(x + y);
#endif
#if OP_MUL
  out[i] = T(x * y);
#endif
#if OP_SUB
  out[i] = T(x - y);
#endif
#if OP_LERP
  let w = params.lerp_weight;
  let d = y - x;
  out[i] = T(select(fma(w - 1.0, d, y), fma(w, d, x), abs(w) < 0.5));
#endif
}
