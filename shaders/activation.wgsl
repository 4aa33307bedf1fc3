// Unary activations over a contiguous tensor of type T, computed in f32. One ACT_* flag picks
// the function from common/activations.wgsl (shared with the GEMM epilogue).

#include "common/activations.wgsl"

struct Params {
  n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

fn activate(v: f32) -> f32 {
#if ACT_GELU
  return gelu_erf(v);
#endif
#if ACT_GELU_TANH
  return gelu_tanh(v);
#endif
#if ACT_QUICK_GELU
  return quick_gelu(v);
#endif
#if ACT_SILU
  return silu(v);
#endif
#if ACT_LEAKY_RELU
  // torch.nn.LeakyReLU(0.2), the slope WuerstchenPrior.cond_mapper uses.
  return leaky_relu(v, 0.2);
#endif
#if ACT_SIGMOID
  return sigmoid(v);
#endif
}

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  out[i] = T(activate(f32(x[i])));
}
