// LayerNorm over the last dimension of a [rows, cols] tensor (NHWC channels or token features):
// y = (x − mean) · rsqrt(var + eps) [· weight + bias], biased variance, statistics in f32.
// TPR invocations share a row (RPW rows per workgroup). Two passes over the row (mean, then the
// squared deviations) keep the variance exact when |mean| ≫ std, where E[x²] − mean² would cancel.
// torch computes x·rstd + (−rstd·mean) instead, which loses a few ulp of mean there; the form
// here is the more accurate of the two and agrees with it within that noise.

#include "common/row_reduce.wgsl"

struct Params {
  rows: u32,
  cols: u32,
  eps: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
#if AFFINE
@group(0) @binding(2) var<storage, read> weight: array<W>;
@group(0) @binding(3) var<storage, read> bias: array<W>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;
#else
@group(0) @binding(2) var<storage, read_write> out: array<T>;
#endif

@compute @workgroup_size(RPW * TPR)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = (wid.x + wid.y * nwg.x) * RPW + lid / TPR;
  let lane = lid % TPR;
  let cols = params.cols;
  // Invocations past the last row still take part in the reductions, with zeros.
  let valid = row < params.rows;
  let base = row * cols;

  var sum = 0.0;
  if (valid) {
    for (var c = lane; c < cols; c += TPR) {
      sum += f32(x[base + c]);
    }
  }
  let mean = row_sum(sum, lid) / f32(cols);

  var squares = 0.0;
  if (valid) {
    for (var c = lane; c < cols; c += TPR) {
      let d = f32(x[base + c]) - mean;
      squares = fma(d, d, squares);
    }
  }
  let rstd = 1.0 / sqrt(row_sum(squares, lid) / f32(cols) + params.eps);

  if (!valid) {
    return;
  }
  for (var c = lane; c < cols; c += TPR) {
    var y = (f32(x[base + c]) - mean) * rstd;
#if AFFINE
    y = y * f32(weight[c]) + f32(bias[c]);
#endif
    out[base + c] = T(y);
  }
}
