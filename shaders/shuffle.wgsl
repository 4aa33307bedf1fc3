// Strided gather of up to 6 dimensions: out is contiguous with shape dims[0..6] and element
// (i0, .., i5) reads x[Σ i_d · in_strides[d]], or is 0 where i[zero_dim] >= zero_from (padding).
// VEC4: the elements are vec4s (the innermost dim contiguous on both sides), 4× fewer index
// computations, which on a CPU-emulated GPU cost a scalar division per dim. Pixel shuffle/unshuffle (NCHW or NHWC) and layout
// permutes are all this one index map; they move bytes and compute nothing, so T is copied as is.

struct Params {
  n: u32,
  dim1: u32,
  dim2: u32,
  dim3: u32,
  dim4: u32,
  dim5: u32,
  stride0: u32,
  stride1: u32,
  stride2: u32,
  stride3: u32,
  stride4: u32,
  stride5: u32,
  zero_dim: u32,
  zero_from: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
#include "common/lanes.wgsl"

@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read_write> out: array<V>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  var rest = i;
  let i5 = rest % params.dim5;
  rest /= params.dim5;
  let i4 = rest % params.dim4;
  rest /= params.dim4;
  let i3 = rest % params.dim3;
  rest /= params.dim3;
  let i2 = rest % params.dim2;
  rest /= params.dim2;
  let i1 = rest % params.dim1;
  let i0 = rest / params.dim1;
  let index = array<u32, 6>(i0, i1, i2, i3, i4, i5);
  if (index[params.zero_dim] >= params.zero_from) {
    out[i] = V(0.0);
    return;
  }
  out[i] = x[i0 * params.stride0 + i1 * params.stride1 + i2 * params.stride2 + i3 * params.stride3 +
             i4 * params.stride4 + i5 * params.stride5];
}
