// Elementwise ops over contiguous tensors of type T, computed in f32.
// Binary ops: one OP_* flag selects add, mul, sub, add_scaled or lerp. Both inputs have `n` elements, or (flag
// BROADCAST) `b` has `b_period` elements and repeats (a trailing block, e.g. a per-channel vector
// in NHWC). VEC4 handles 4 elements per invocation (n and b_period multiples of 4): fewer integer
// modulos, which a CPU-emulated GPU runs one lane at a time, and wider loads. Params count items.
// OP_ADD_SCALED is a + b·w for a scalar weight w, rounded after the product and after the sum.
// OP_LERP is torch.lerp(a, b, weight) for a scalar weight, bit for bit as torch's CPU kernel:
// a + w·(b − a) for |w| < 0.5, else b − (1 − w)·(b − a), each a single fused multiply-add.

#include "common/lanes.wgsl"

struct Params {
  n: u32,
  b_period: u32,
  weight: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> a: array<V>;
@group(0) @binding(2) var<storage, read> b: array<V>;
@group(0) @binding(3) var<storage, read_write> out: array<V>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let x = F(a[i]);
#if BROADCAST
  let y = F(b[i % params.b_period]);
#else
  let y = F(b[i]);
#endif
#if OP_ADD
  out[i] = V(x + y);
#endif
#if OP_MUL
  out[i] = V(x * y);
#endif
#if OP_SUB
  out[i] = V(x - y);
#endif
#if OP_ADD_SCALED
  let scaled = y * F(params.weight);
  out[i] = V(x + scaled);
#endif
#if OP_LERP
  let w = params.weight;
  let d = y - x;
  out[i] = V(select(fma(F(w - 1.0), d, y), fma(F(w), d, x), abs(w) < 0.5));
#endif
}
