// Softmax over the last dimension of a [rows, cols] tensor, as torch's CPU kernel computes it:
// exp(x − max) · (1 / Σ exp(x − max)), in f32. Same row tiling as layer_norm.wgsl: TPR invocations
// per row, RPW rows per workgroup. −inf entries (masked scores) get weight 0; a row must hold at
// least one finite value.

#include "common/row_reduce.wgsl"

struct Params {
  rows: u32,
  cols: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

// Below every finite f32: the neutral element of max that stays finite.
const LOWEST: f32 = -3.4028234663852886e38;

@compute @workgroup_size(RPW * TPR)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_index) lid: u32,
) {
  let row = (wid.x + wid.y * nwg.x) * RPW + lid / TPR;
  let lane = lid % TPR;
  let cols = params.cols;
  let valid = row < params.rows;
  let base = row * cols;

  var m = LOWEST;
  if (valid) {
    for (var c = lane; c < cols; c += TPR) {
      m = max(m, f32(x[base + c]));
    }
  }
  m = row_max(m, lid);

  var sum = 0.0;
  if (valid) {
    for (var c = lane; c < cols; c += TPR) {
      sum += exp(f32(x[base + c]) - m);
    }
  }
  let inv_sum = 1.0 / row_sum(sum, lid);

  if (!valid) {
    return;
  }
  for (var c = lane; c < cols; c += TPR) {
    out[base + c] = T(exp(f32(x[base + c]) - m) * inv_sum);
  }
}
