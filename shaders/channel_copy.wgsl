// Copies a block of `width` consecutive channels of every row of src into dst, where both are
// row-major [rows, *] with their own row stride and channel offset: concat and chunk along the
// last (channel) dimension of NHWC tensors. Moves values of type T without converting them.
// VEC4: four channels per invocation (every width, stride and offset a multiple of 4), 4× fewer
// index divisions; params count items.

#include "common/lanes.wgsl"

struct Params {
  n: u32,
  width: u32,
  src_stride: u32,
  src_offset: u32,
  dst_stride: u32,
  dst_offset: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> src: array<V>;
@group(0) @binding(2) var<storage, read_write> dst: array<V>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let row = i / params.width;
  let c = i % params.width;
  dst[row * params.dst_stride + params.dst_offset + c] = src[row * params.src_stride + params.src_offset + c];
}
