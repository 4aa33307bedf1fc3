// GlobalResponseNorm (ConvNeXt-V2, diffusers' Würstchen) of an NHWC tensor [B, HW, C]:
//   agg[b, c]   = ||x[b, :, c]||₂                      (over all HW positions)
//   scale[b, c] = agg[b, c] / (mean_c agg[b, c] + 1e-6)
//   out         = gamma[c] · (x · scale[b, c]) + beta[c] + x
// in three passes, one flag each, all statistics in f32:
//   GRN_SUMSQ  partial sums of squares per (b, spatial split, channel): grid (⌈C/CT⌉, splits, B),
//              CT channels × LANES position lanes per workgroup, so reads are contiguous in C and
//              a 128×128 map still spreads over many workgroups.
//   GRN_SCALE  one workgroup (TPR invocations, RPW = 1) per batch: agg, its mean over C, scale.
//   GRN_APPLY  elementwise.

struct Params {
  hw: u32,
  channels: u32,
  splits: u32,
  // Positions per split (the last split may hold fewer).
  chunk: u32,
  n: u32,
}

@group(0) @binding(0) var<uniform> params: Params;

#if GRN_SUMSQ
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

var<workgroup> lane_sums: array<f32, CT * LANES>;

@compute @workgroup_size(CT, LANES)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let c = wid.x * CT + lid.x;
  let split = wid.y;
  let b = wid.z;
  let start = split * params.chunk;
  let end = min(start + params.chunk, params.hw);
  var sum = 0.0;
  if (c < params.channels) {
    for (var p = start + lid.y; p < end; p += LANES) {
      let v = f32(x[(b * params.hw + p) * params.channels + c]);
      sum = fma(v, v, sum);
    }
  }
  lane_sums[lid.y * CT + lid.x] = sum;
  workgroupBarrier();
  if (lid.y == 0u && c < params.channels) {
    var total = 0.0;
    for (var l = 0u; l < LANES; l++) {
      total += lane_sums[l * CT + lid.x];
    }
    partial[(b * params.splits + split) * params.channels + c] = total;
  }
}
#endif

#if GRN_SCALE
#include "common/row_reduce.wgsl"

@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> scale: array<f32>;

@compute @workgroup_size(TPR)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.x;
  let channels = params.channels;
  var agg_sum = 0.0;
  for (var c = lid; c < channels; c += TPR) {
    var sum = 0.0;
    for (var s = 0u; s < params.splits; s++) {
      sum += partial[(b * params.splits + s) * channels + c];
    }
    let agg = sqrt(sum);
    scale[b * channels + c] = agg;
    agg_sum += agg;
  }
  let denom = row_sum(agg_sum, lid) / f32(channels) + 1e-6;
  // Each invocation rescales only the entries it wrote itself: no barrier needed.
  for (var c = lid; c < channels; c += TPR) {
    scale[b * channels + c] = scale[b * channels + c] / denom;
  }
}
#endif

#if GRN_APPLY
// VEC4: four channels per invocation (channels % 4 == 0), 4× fewer index divisions.
#include "common/lanes.wgsl"
#if VEC4
alias VW = vec4<W>;
#else
alias VW = W;
#endif

@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> scale: array<F>;
@group(0) @binding(3) var<storage, read> gamma: array<VW>;
@group(0) @binding(4) var<storage, read> beta: array<VW>;
@group(0) @binding(5) var<storage, read_write> out: array<V>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  let items_per_row = params.channels / VALUES_PER_ITEM;
  if (i >= params.n / VALUES_PER_ITEM) {
    return;
  }
  let c = i % items_per_row;
  let b = i / (params.hw * items_per_row);
  let v = F(x[i]);
  out[i] = V(F(gamma[c]) * (v * scale[b * items_per_row + c]) + F(beta[c]) + v);
}
#endif
