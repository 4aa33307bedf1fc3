// TimestepBlock's modulation out = x · (1 + a) + b over an NHWC tensor x [B, H·W, C], where a and
// b are the two halves of the mapper output ab [B, 2C] (torch's `chunk(2, dim=1)`), broadcast over
// the positions of their batch entry. f32 arithmetic with torch's three roundings. VEC4: four
// channels per invocation (channels % 4 == 0), 4× fewer index divisions; params count items.

#include "common/lanes.wgsl"

struct Params {
  n: u32,
  channels: u32,
  per_batch: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> ab: array<V>;
@group(0) @binding(3) var<storage, read_write> out: array<V>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let row = (i / params.per_batch) * 2u * params.channels + i % params.channels;
  let scale = 1.0 + F(ab[row]);
  let scaled = F(x[i]) * scale;
  out[i] = V(scaled + F(ab[row + params.channels]));
}
