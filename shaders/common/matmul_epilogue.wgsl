// What every GEMM kernel (matmul.wgsl, matmul_register.wgsl) shares: Params, the bindings (VEC4
// reads the operands `a` and `b` 4 elements at a time along their contiguous axis) and the fused
// epilogue
//   out[idx] = act(alpha · acc + bias[col]) + residual[idx]
// Flags BIAS and RESIDUAL add those bindings; the constant ACT picks the activation. OUT_VEC4
// (N % 4 == 0, a kernel that writes 4 adjacent columns at a time) binds bias, residual and out as
// vec4 arrays: one load or store where there would be four, each bounds-checked on a CPU-emulated GPU.

#include "common/activations.wgsl"

const ACT_NONE = 0u;
const ACT_GELU = 1u;
const ACT_SILU = 2u;
const ACT_LEAKY_RELU = 3u;
const ACT_QUICK_GELU = 4u;
const LEAKY_RELU_SLOPE = 0.2;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  a_batch_stride: u32,
  b_batch_stride: u32,
  out_batch_stride: u32,
  alpha: f32,
  // Elements before the first matrix of `a` and of `out` (a window of rows of a bigger batch).
  a_offset: u32,
  out_offset: u32,
}

#if OUT_VEC4
alias OutT = vec4<T>;
alias BiasT = vec4<W>;
#else
alias OutT = T;
alias BiasT = W;
#endif

@group(0) @binding(0) var<uniform> params: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> a: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<W>>;
#else
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<W>;
#endif
#if BIAS
const BIAS_BINDINGS = 1u;
@group(0) @binding(3) var<storage, read> bias: array<BiasT>;
#else
const BIAS_BINDINGS = 0u;
#endif
#if RESIDUAL
const RESIDUAL_BINDINGS = 1u;
@group(0) @binding(3u + BIAS_BINDINGS) var<storage, read> residual: array<OutT>;
#else
const RESIDUAL_BINDINGS = 0u;
#endif
@group(0) @binding(3u + BIAS_BINDINGS + RESIDUAL_BINDINGS) var<storage, read_write> out: array<OutT>;

fn activate(v: f32) -> f32 {
  if (ACT == ACT_GELU) {
    return gelu_erf(v);
  }
  if (ACT == ACT_SILU) {
    return silu(v);
  }
  if (ACT == ACT_LEAKY_RELU) {
    return leaky_relu(v, LEAKY_RELU_SLOPE);
  }
  if (ACT == ACT_QUICK_GELU) {
    return quick_gelu(v);
  }
  return v;
}

#if OUT_VEC4
// Writes columns col .. col + 3 of the output row whose column 0 is element `row_start`; the caller
// has checked the row. With N % 4 == 0 the four columns are all inside or all outside.
fn store_quad(row_start: u32, col: u32, acc: vec4<f32>) {
  if (col >= params.n) {
    return;
  }
  var v = acc * params.alpha;
#if BIAS
  v += vec4<f32>(bias[col / 4u]);
#endif
  v = vec4<f32>(activate(v.x), activate(v.y), activate(v.z), activate(v.w));
  let idx = (row_start + col) / 4u;
#if RESIDUAL
  v += vec4<f32>(residual[idx]);
#endif
  out[idx] = vec4<T>(v);
}
#else
// Writes one output element; the caller has checked that row and column are inside the matrix.
fn store_out(idx: u32, col: u32, acc: f32) {
  var v = acc * params.alpha;
#if BIAS
  v += f32(bias[col]);
#endif
  v = activate(v);
#if RESIDUAL
  v += f32(residual[idx]);
#endif
  out[idx] = T(v);
}

// store_out for columns col .. col + 3 of the row whose column 0 is element `row_start`, those inside.
fn store_quad(row_start: u32, col: u32, acc: vec4<f32>) {
  for (var c = 0u; c < 4u; c++) {
    if (col + c < params.n) {
      store_out(row_start + col + c, col + c, acc[c]);
    }
  }
}
#endif
