// Convolution as an implicit GEMM for GPUs emulated on a CPU: the geometry of
// common/conv_geometry.wgsl in the register tiles of common/register_tile.wgsl. Tiles are numbered
// with columns fastest, spread over workgroups x and y; workgroup z is the group.

#include "common/conv_geometry.wgsl"
#include "common/register_tile.wgsl"

// This workgroup's first row and group, this lane's first column, and where the lane's A rows read
// their input (rows past the end read the last row: computed, never stored).
var<private> row0: u32;
var<private> n0: u32;
var<private> group: u32;
var<private> origins: array<RowOrigin, ROWS / SG>;
// The current reduction quad: tile_load_b locates it, the A loads of the same step reuse it.
var<private> quad: KQuad;

fn tile_begin(wid: vec3<u32>, nwg: vec3<u32>, lane: u32) -> bool {
  let tiles_n = (params.cout_g + 4u * SG - 1u) / (4u * SG);
  let tile = wid.x + wid.y * nwg.x;
  if (tile >= tiles_n * ((params.rows + ROWS - 1u) / ROWS)) {
    return false;
  }
  row0 = (tile / tiles_n) * ROWS;
  n0 = (tile % tiles_n) * 4u * SG + lane * 4u;
  group = wid.z;
  for (var q = 0u; q < ROWS / SG; q++) {
    origins[q] = row_origin(min(row0 + lane + SG * q, params.rows - 1u));
  }
  return true;
}

fn tile_k() -> u32 {
  return params.k;
}

fn tile_load_a(q: u32, k: u32) -> vec4<f32> {
  return input_value(origins[q], quad, group);
}

fn tile_load_b(k: u32) -> mat4x4<f32> {
  quad = locate_k(k);
  return mat4x4<f32>(
    weight_value(quad, n0, group),
    weight_value(quad, n0 + 1u, group),
    weight_value(quad, n0 + 2u, group),
    weight_value(quad, n0 + 3u, group),
  );
}

fn tile_store(r: u32, acc: vec4<f32>) {
  let row = row0 + r;
  if (row < params.rows && n0 < params.cout_g) {
    store_outputs(row, group, n0, acc);
  }
}
