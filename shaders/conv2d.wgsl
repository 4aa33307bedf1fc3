// Convolution as an implicit GEMM (no im2col buffer) in workgroup-memory tiles, for GPUs; the
// geometry (which input and weight elements make A and B) is common/conv_geometry.wgsl's.
//
// Tiles: a workgroup of WG_M × WG_N threads computes BM × BN = (RM·WG_M) × (4·WG_N) outputs, each
// thread an RM × 4 block (RM 4 or 8) held in f32 registers; K advances BK at a time through
// workgroup memory.
// Tile (row block, column block) is workgroup (x + y·nx) and the group is workgroup z.

#include "common/conv_geometry.wgsl"

const BM: u32 = RM * WG_M;
const BN: u32 = 4u * WG_N;
const THREADS: u32 = WG_M * WG_N;
const QUADS_PER_ROW: u32 = BK / 4u;
const A_LOADS: u32 = BM * QUADS_PER_ROW / THREADS;
const B_LOADS: u32 = BN * QUADS_PER_ROW / THREADS;

// [k][row] and [k][n], four rows (columns) per vec4, so the inner product reads one vec4 of each.
var<workgroup> a_tile: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> b_tile: array<vec4<f32>, BK * BN / 4u>;

@compute @workgroup_size(WG_N, WG_M)
fn main(
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
  @builtin(local_invocation_id) lid: vec3<u32>,
  @builtin(local_invocation_index) lidx: u32,
) {
  // Tiles are numbered with n fastest (tiles of one row block share their gathered input), spread
  // over x and y when there are more than one grid dimension holds.
  let tiles_n = (params.cout_g + BN - 1u) / BN;
  let tile = wid.x + wid.y * nwg.x;
  if (tile >= tiles_n * ((params.rows + BM - 1u) / BM)) {
    return;
  }
  let row0 = (tile / tiles_n) * BM;
  let n0 = (tile % tiles_n) * BN;
  let group = wid.z;

  // The rows this thread loads stay the same for the whole K loop.
  var origins: array<RowOrigin, A_LOADS>;
  for (var l = 0u; l < A_LOADS; l++) {
    origins[l] = row_origin(row0 + (lidx + l * THREADS) / QUADS_PER_ROW);
  }

  var acc: array<vec4<f32>, RM>;
  for (var k0 = 0u; k0 < params.k; k0 += BK) {
    for (var l = 0u; l < A_LOADS; l++) {
      let q = lidx + l * THREADS;
      let r = q / QUADS_PER_ROW;
      let kq = (q % QUADS_PER_ROW) * 4u;
      let v = input_value(origins[l], locate_k(k0 + kq), group);
      for (var j = 0u; j < 4u; j++) {
        a_tile[(kq + j) * (BM / 4u) + r / 4u][r % 4u] = v[j];
      }
    }
    for (var l = 0u; l < B_LOADS; l++) {
      let q = lidx + l * THREADS;
      let n = q / QUADS_PER_ROW;
      let kq = (q % QUADS_PER_ROW) * 4u;
      let v = weight_value(locate_k(k0 + kq), n0 + n, group);
      for (var j = 0u; j < 4u; j++) {
        b_tile[(kq + j) * (BN / 4u) + n / 4u][n % 4u] = v[j];
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let b = b_tile[kk * (BN / 4u) + lid.x];
      for (var h = 0u; h < RM / 4u; h++) {
        let a = a_tile[kk * (BM / 4u) + lid.y * (RM / 4u) + h];
        for (var i = 0u; i < 4u; i++) {
          acc[4u * h + i] = fma(vec4<f32>(a[i]), b, acc[4u * h + i]);
        }
      }
    }
    workgroupBarrier();
  }

  let n = n0 + lid.x * 4u;
  if (n >= params.cout_g) {
    return;
  }
  for (var i = 0u; i < RM; i++) {
    let row = row0 + lid.y * RM + i;
    if (row >= params.rows) {
      break;
    }
    store_outputs(row, group, n, acc[i]);
  }
}
