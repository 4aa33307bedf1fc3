// GroupNorm of an NHWC tensor [B, HW, C]: group g holds channels g·cg .. g·cg + cg − 1, and its
// statistics run over all HW positions of those channels (torch.nn.functional.group_norm).
// One workgroup (TPR invocations, RPW = 1) per (batch, group); two passes for an exact variance,
// then y = (x − mean) · rstd · weight[c] + bias[c], all in f32.

#include "common/row_reduce.wgsl"

struct Params {
  hw: u32,
  channels: u32,
  groups: u32,
  // Channels per group.
  cg: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> weight: array<W>;
@group(0) @binding(3) var<storage, read> bias: array<W>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

// Element i of the group's (position, channel-in-group) enumeration → index into x.
fn element(b: u32, g: u32, i: u32) -> u32 {
  return (b * params.hw + i / params.cg) * params.channels + g * params.cg + i % params.cg;
}

@compute @workgroup_size(TPR)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let bg = wid.x + wid.y * nwg.x;
  let b = bg / params.groups;
  let g = bg % params.groups;
  let n = params.hw * params.cg;

  var sum = 0.0;
  for (var i = lid; i < n; i += TPR) {
    sum += f32(x[element(b, g, i)]);
  }
  let mean = row_sum(sum, lid) / f32(n);

  var squares = 0.0;
  for (var i = lid; i < n; i += TPR) {
    let d = f32(x[element(b, g, i)]) - mean;
    squares = fma(d, d, squares);
  }
  let rstd = 1.0 / sqrt(row_sum(squares, lid) / f32(n) + params.eps);

  for (var i = lid; i < n; i += TPR) {
    let at = element(b, g, i);
    let c = g * params.cg + i % params.cg;
    out[at] = T((f32(x[at]) - mean) * rstd * f32(weight[c]) + f32(bias[c]));
  }
}
