// Softmax over the last dimension of a [rows, cols] tensor, as torch's CPU kernel computes it:
// exp(x − max) · (1 / Σ exp(x − max)), in f32. Same row tiling as layer_norm.wgsl: TPR invocations
// per row, RPW rows per workgroup. −inf entries (masked scores) get weight 0; a row must hold at
// least one finite value. The output rows may be longer (out_cols): the extra columns are zeros,
// padding for a GEMM that reads 4 columns at a time.
//
// As attention scores (rows are queries of consecutive [queries_per_matrix, cols] matrices, one per
// batch entry and head) the flags CAUSAL (key > query) and PADDING_MASK (keep[b, key] != 1) mask
// keys as attention.wgsl does (its header says why): a key hit by n masks scores −n·MASKED.

#include "common/row_reduce.wgsl"

struct Params {
  rows: u32,
  cols: u32,
  out_cols: u32,
  queries_per_matrix: u32,
  // Query index of each matrix's first row (a window of a longer query sequence).
  first_query: u32,
  heads: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
#if PADDING_MASK
@group(0) @binding(2) var<storage, read> keep: array<M>;
@group(0) @binding(3) var<storage, read_write> out: array<T>;
#else
@group(0) @binding(2) var<storage, read_write> out: array<T>;
#endif

// Below every finite f32: the neutral element of max that stays finite.
const LOWEST: f32 = -3.4028234663852886e38;
const MASKED: f32 = 1e30;

fn score(base: u32, row: u32, c: u32) -> f32 {
  var level = 0.0;
#if CAUSAL
  let query = params.first_query + row % params.queries_per_matrix;
  level += select(0.0, 1.0, c > query);
#endif
#if PADDING_MASK
  let b = row / params.queries_per_matrix / params.heads;
  level += select(0.0, 1.0, f32(keep[b * params.cols + c]) != 1.0);
#endif
  return select(f32(x[base + c]), -MASKED * level, level > 0.0);
}

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
      m = max(m, score(base, row, c));
    }
  }
  m = row_max(m, lid);

  var sum = 0.0;
  if (valid) {
    for (var c = lane; c < cols; c += TPR) {
      sum += exp(score(base, row, c) - m);
    }
  }
  let inv_sum = 1.0 / row_sum(sum, lid);

  if (!valid) {
    return;
  }
  for (var c = lane; c < params.out_cols; c += TPR) {
    var p = 0.0;
    if (c < cols) {
      p = exp(score(base, row, c) - m) * inv_sum;
    }
    out[row * params.out_cols + c] = T(p);
  }
}
