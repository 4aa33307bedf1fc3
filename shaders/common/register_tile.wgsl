// The register-tiled GEMM main loop for GPUs a CPU emulates (Mesa's lavapipe/llvmpipe), shared by
// matmul_register.wgsl and conv2d_register.wgsl, which say where operands come from and where
// results go through five functions:
//   tile_begin(wid, nwg, lane) -> bool   set up this workgroup's tile; false: the grid's spare workgroup
//   tile_k() -> u32                      the reduction length K
//   tile_load_a(q, k) -> vec4<f32>       A at this lane's q-th row (of ROWS / SG) and k .. k + 4
//   tile_load_b(k) -> mat4x4<f32>        the 4×4 block of B at k .. k + 4 and this lane's 4 columns,
//                                        column c of the matrix holding column c along K; called
//                                        before the tile_load_a calls of the same k
//   tile_store(r, acc)                   row r (of ROWS) of the tile, this lane's 4 columns
//
// llvmpipe runs a subgroup of SG invocations as one SIMD register and turns every storage-buffer
// load into SG bounds-checked scalar loads, about 13 instructions per loaded value (workgroup
// memory is no cheaper), while a multiply-add is one SIMD instruction (LLVM contracts them: an
// explicit fma() measured no faster). So what counts is FMAs per loaded value, and this loop has
// no workgroup memory at all: a workgroup is one subgroup and computes ROWS rows × 4·SG columns.
// Each invocation keeps ROWS × 4 accumulators (all rows, its 4 columns). Per step of 4 along K it
// loads its columns' 4×4 block of B and ROWS / SG rows of A, then subgroupBroadcast hands each A
// row to every lane: a loaded A value feeds 4·SG FMAs, a B value ROWS. Broadcast lane ids must be
// constants, hence the named accumulators. ROWS is 32: 16 or 64 rows, or 8 columns per lane,
// measured slower on lavapipe; every lane loading the A rows itself instead of the broadcast ran
// at a seventh of the speed.

const_assert ROWS == 32u;

@compute @workgroup_size(SG)
fn main(
  @builtin(subgroup_invocation_id) lane: u32,
  @builtin(workgroup_id) wid: vec3<u32>,
  @builtin(num_workgroups) nwg: vec3<u32>,
) {
  if (!tile_begin(wid, nwg, lane)) {
    return;
  }
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
  var acc8 = vec4<f32>(0.0);
  var acc9 = vec4<f32>(0.0);
  var acc10 = vec4<f32>(0.0);
  var acc11 = vec4<f32>(0.0);
  var acc12 = vec4<f32>(0.0);
  var acc13 = vec4<f32>(0.0);
  var acc14 = vec4<f32>(0.0);
  var acc15 = vec4<f32>(0.0);
  var acc16 = vec4<f32>(0.0);
  var acc17 = vec4<f32>(0.0);
  var acc18 = vec4<f32>(0.0);
  var acc19 = vec4<f32>(0.0);
  var acc20 = vec4<f32>(0.0);
  var acc21 = vec4<f32>(0.0);
  var acc22 = vec4<f32>(0.0);
  var acc23 = vec4<f32>(0.0);
  var acc24 = vec4<f32>(0.0);
  var acc25 = vec4<f32>(0.0);
  var acc26 = vec4<f32>(0.0);
  var acc27 = vec4<f32>(0.0);
  var acc28 = vec4<f32>(0.0);
  var acc29 = vec4<f32>(0.0);
  var acc30 = vec4<f32>(0.0);
  var acc31 = vec4<f32>(0.0);
  let k_end = tile_k();
  for (var k = 0u; k < k_end; k += 4u) {
    let bm = tile_load_b(k);
    var mine: array<vec4<f32>, ROWS / SG>;
    for (var q = 0u; q < ROWS / SG; q++) {
      mine[q] = tile_load_a(q, k);
    }
    acc0 += subgroupBroadcast(mine[0u / SG], 0u % SG) * bm;
    acc1 += subgroupBroadcast(mine[1u / SG], 1u % SG) * bm;
    acc2 += subgroupBroadcast(mine[2u / SG], 2u % SG) * bm;
    acc3 += subgroupBroadcast(mine[3u / SG], 3u % SG) * bm;
    acc4 += subgroupBroadcast(mine[4u / SG], 4u % SG) * bm;
    acc5 += subgroupBroadcast(mine[5u / SG], 5u % SG) * bm;
    acc6 += subgroupBroadcast(mine[6u / SG], 6u % SG) * bm;
    acc7 += subgroupBroadcast(mine[7u / SG], 7u % SG) * bm;
    acc8 += subgroupBroadcast(mine[8u / SG], 8u % SG) * bm;
    acc9 += subgroupBroadcast(mine[9u / SG], 9u % SG) * bm;
    acc10 += subgroupBroadcast(mine[10u / SG], 10u % SG) * bm;
    acc11 += subgroupBroadcast(mine[11u / SG], 11u % SG) * bm;
    acc12 += subgroupBroadcast(mine[12u / SG], 12u % SG) * bm;
    acc13 += subgroupBroadcast(mine[13u / SG], 13u % SG) * bm;
    acc14 += subgroupBroadcast(mine[14u / SG], 14u % SG) * bm;
    acc15 += subgroupBroadcast(mine[15u / SG], 15u % SG) * bm;
    acc16 += subgroupBroadcast(mine[16u / SG], 16u % SG) * bm;
    acc17 += subgroupBroadcast(mine[17u / SG], 17u % SG) * bm;
    acc18 += subgroupBroadcast(mine[18u / SG], 18u % SG) * bm;
    acc19 += subgroupBroadcast(mine[19u / SG], 19u % SG) * bm;
    acc20 += subgroupBroadcast(mine[20u / SG], 20u % SG) * bm;
    acc21 += subgroupBroadcast(mine[21u / SG], 21u % SG) * bm;
    acc22 += subgroupBroadcast(mine[22u / SG], 22u % SG) * bm;
    acc23 += subgroupBroadcast(mine[23u / SG], 23u % SG) * bm;
    acc24 += subgroupBroadcast(mine[24u / SG], 24u % SG) * bm;
    acc25 += subgroupBroadcast(mine[25u / SG], 25u % SG) * bm;
    acc26 += subgroupBroadcast(mine[26u / SG], 26u % SG) * bm;
    acc27 += subgroupBroadcast(mine[27u / SG], 27u % SG) * bm;
    acc28 += subgroupBroadcast(mine[28u / SG], 28u % SG) * bm;
    acc29 += subgroupBroadcast(mine[29u / SG], 29u % SG) * bm;
    acc30 += subgroupBroadcast(mine[30u / SG], 30u % SG) * bm;
    acc31 += subgroupBroadcast(mine[31u / SG], 31u % SG) * bm;
  }

  // One store in a loop, not one per accumulator: inlining an epilogue ROWS × 4 times made
  // compiling take seconds.
  let accs = array<vec4<f32>, ROWS>(
    acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15,
    acc16, acc17, acc18, acc19, acc20, acc21, acc22, acc23, acc24, acc25, acc26, acc27, acc28, acc29, acc30, acc31,
  );
  for (var r = 0u; r < ROWS; r++) {
    tile_store(r, accs[r]);
  }
}
