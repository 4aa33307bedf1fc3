// Batched GEMM for GPUs emulated on a CPU (Mesa's lavapipe/llvmpipe): the same product, bindings,
// flags (B_NK, VEC4, BIAS, RESIDUAL, ACT) and fused epilogue as matmul.wgsl, tiled for a CPU.
//
// llvmpipe runs a subgroup of SG invocations as one SIMD register and turns every storage-buffer
// load into SG bounds-checked scalar loads, about 13 instructions per loaded value (workgroup
// memory is no cheaper), while an FMA is two (a multiply and an add). So what counts is FMAs per
// loaded value, and this kernel has no workgroup memory at all: a workgroup is one subgroup and
// computes ROWS rows × 4·SG columns of `out`. Each invocation keeps ROWS × 4 accumulators (all
// rows, its 4 columns). Per step of 4 along K it loads its columns' 4×4 block of B and ROWS / SG
// rows of A, then subgroupBroadcast hands each A row to every lane: a loaded A value feeds 4·SG
// FMAs, a B value ROWS. Broadcast lane ids must be constants, hence the named accumulators.
// ROWS is 32: 16 or 64 rows, or 8 columns per lane, measured slower on lavapipe.
// VEC4 reads 4 elements at a time along the contiguous axis (K % 4 == 0, and N % 4 == 0 when B is
// [K, N]); without it, K is walked 4 at a time with the tail masked.

#include "common/matmul_epilogue.wgsl"

#if VEC4
@group(0) @binding(1) var<storage, read> a: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<W>>;
#else
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<W>;
#endif

const_assert ROWS == 32u;

// A[row, k .. k + 4), zero past K; `row` is in range.
fn load_a(a_base: u32, row: u32, k: u32) -> vec4<f32> {
#if VEC4
  return vec4<f32>(a[(a_base + row * params.k + k) / 4u]);
#else
  let base = a_base + row * params.k;
  var v = vec4<f32>(0.0);
  for (var i = 0u; i < 4u; i++) {
    v[i] = select(0.0, f32(a[base + min(k + i, params.k - 1u)]), k + i < params.k);
  }
  return v;
#endif
}

// The 4×4 block of B at k .. k + 4 (zero past K) and columns n0 .. n0 + 3, as a matrix whose
// column c holds column n0 + c along K: a row of A times it adds a dot product to each column.
// Columns past N repeat the last one (their outputs are never stored).
fn load_b(b_base: u32, n0: u32, k: u32) -> mat4x4<f32> {
  let last = params.n - 1u;
#if B_NK
#if VEC4
  return mat4x4<f32>(
    vec4<f32>(b[(b_base + min(n0, last) * params.k + k) / 4u]),
    vec4<f32>(b[(b_base + min(n0 + 1u, last) * params.k + k) / 4u]),
    vec4<f32>(b[(b_base + min(n0 + 2u, last) * params.k + k) / 4u]),
    vec4<f32>(b[(b_base + min(n0 + 3u, last) * params.k + k) / 4u]),
  );
#else
  var block: mat4x4<f32>;
  for (var c = 0u; c < 4u; c++) {
    let base = b_base + min(n0 + c, last) * params.k;
    for (var i = 0u; i < 4u; i++) {
      block[c][i] = select(0.0, f32(b[base + min(k + i, params.k - 1u)]), k + i < params.k);
    }
  }
  return block;
#endif
#else
  // B is [K, N]: rows k .. k + 3, each read across the 4 columns, then transposed.
#if VEC4
  let col = min(n0, last - 3u);
  return transpose(mat4x4<f32>(
    vec4<f32>(b[(b_base + k * params.n + col) / 4u]),
    vec4<f32>(b[(b_base + (k + 1u) * params.n + col) / 4u]),
    vec4<f32>(b[(b_base + (k + 2u) * params.n + col) / 4u]),
    vec4<f32>(b[(b_base + (k + 3u) * params.n + col) / 4u]),
  ));
#else
  var block: mat4x4<f32>;
  for (var i = 0u; i < 4u; i++) {
    let base = b_base + min(k + i, params.k - 1u) * params.n;
    for (var c = 0u; c < 4u; c++) {
      block[c][i] = select(0.0, f32(b[base + min(n0 + c, last)]), k + i < params.k);
    }
  }
  return block;
#endif
#endif
}

fn store_row(out_base: u32, m: u32, n0: u32, acc: vec4<f32>) {
  if (m >= params.m) {
    return;
  }
  for (var c = 0u; c < 4u; c++) {
    let col = n0 + c;
    if (col < params.n) {
      store_out(out_base + m * params.n + col, col, acc[c]);
    }
  }
}

@compute @workgroup_size(SG)
fn main(@builtin(subgroup_invocation_id) lane: u32, @builtin(workgroup_id) wid: vec3<u32>) {
  let n0 = (wid.x * SG + lane) * 4u;
  let m0 = wid.y * ROWS;
  let z = wid.z;
  let a_base = z * params.a_batch_stride + params.a_offset;
  let b_base = z * params.b_batch_stride;

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
  // This lane loads rows m0 + lane + SG·q of A (clamped: rows past M are computed, never stored).
  var a_rows: array<u32, ROWS / SG>;
  for (var q = 0u; q < ROWS / SG; q++) {
    a_rows[q] = min(m0 + lane + SG * q, params.m - 1u);
  }
  for (var k = 0u; k < params.k; k += 4u) {
    let bm = load_b(b_base, n0, k);
    var mine: array<vec4<f32>, ROWS / SG>;
    for (var q = 0u; q < ROWS / SG; q++) {
      mine[q] = load_a(a_base, a_rows[q], k);
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

  // One epilogue in a loop, not one per accumulator: inlining the activation ROWS × 4 times made
  // compiling take seconds.
  let accs = array<vec4<f32>, ROWS>(
    acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15,
    acc16, acc17, acc18, acc19, acc20, acc21, acc22, acc23, acc24, acc25, acc26, acc27, acc28, acc29, acc30, acc31,
  );
  let out_base = z * params.out_batch_stride + params.out_offset;
  for (var r = 0u; r < ROWS; r++) {
    store_row(out_base, m0 + r, n0, accs[r]);
  }
}
