// Batched GEMM for GPUs emulated on a CPU (Mesa's lavapipe/llvmpipe): the same product, bindings,
// flags (B_NK, VEC4, BIAS, RESIDUAL, ACT) and fused epilogue as matmul.wgsl, tiled for a CPU.
//
// llvmpipe runs a subgroup of SG invocations as one SIMD register and turns every storage-buffer
// load into SG bounds-checked scalar loads, about 13 instructions per loaded value (workgroup
// memory is no cheaper), while an FMA is two. So what counts is FMAs per loaded value, and this
// kernel has no workgroup memory at all: a workgroup is one subgroup and computes ROWS rows ×
// 4·SG columns of `out`. Each invocation keeps ROWS × 4 accumulators (all rows, its 4 columns).
// Per step of 4 along K it loads its columns' 4×4 block of B and ROWS / SG rows of A, then
// subgroupBroadcast hands each A row to every lane: a loaded A value feeds 4·SG FMAs, a B value ROWS.
// Broadcast lane ids must be constants, hence the named accumulators. ROWS is 16, or 32 (ROWS32).
//
// PACKED (f16 a and b, B_NK, K % 8 == 0) reads both operands as u32 pairs of halves: half the loads
// per value. A step then covers 8 along K, as two sub-steps of 4.
// VEC4 reads 4 elements at a time along the contiguous axis (K % 4 == 0, and N % 4 == 0 when B is
// [K, N]); without it, K is walked 4 at a time with the tail masked.

#include "common/matmul_epilogue.wgsl"

#if PACKED
@group(0) @binding(1) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<u32>>;
alias Raw = vec4<u32>;
const KSTEP = 8u;
#else
#if VEC4
@group(0) @binding(1) var<storage, read> a: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<W>>;
#else
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<W>;
#endif
alias Raw = vec4<f32>;
const KSTEP = 4u;
#endif

// A[row, k .. k + KSTEP) in storage form; `row` is in range, `k` below K.
fn load_a(a_base: u32, row: u32, k: u32) -> Raw {
#if PACKED
  return a[(a_base + row * params.k + k) / 8u];
#else
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
#endif
}

// Columns n0 .. n0 + 3 of B at k .. k + KSTEP, one Raw per column; out-of-range columns repeat the
// last one (their outputs are never stored).
fn load_b(b_base: u32, n0: u32, k: u32) -> array<Raw, 4> {
  let last = params.n - 1u;
#if B_NK
#if PACKED
  return array<Raw, 4>(
    b[(b_base + min(n0, last) * params.k + k) / 8u],
    b[(b_base + min(n0 + 1u, last) * params.k + k) / 8u],
    b[(b_base + min(n0 + 2u, last) * params.k + k) / 8u],
    b[(b_base + min(n0 + 3u, last) * params.k + k) / 8u],
  );
#else
#if VEC4
  return array<Raw, 4>(
    vec4<f32>(b[(b_base + min(n0, last) * params.k + k) / 4u]),
    vec4<f32>(b[(b_base + min(n0 + 1u, last) * params.k + k) / 4u]),
    vec4<f32>(b[(b_base + min(n0 + 2u, last) * params.k + k) / 4u]),
    vec4<f32>(b[(b_base + min(n0 + 3u, last) * params.k + k) / 4u]),
  );
#else
  var cols: array<Raw, 4>;
  for (var c = 0u; c < 4u; c++) {
    let base = b_base + min(n0 + c, last) * params.k;
    for (var i = 0u; i < 4u; i++) {
      cols[c][i] = select(0.0, f32(b[base + min(k + i, params.k - 1u)]), k + i < params.k);
    }
  }
  return cols;
#endif
#endif
#else
  // B is [K, N]: rows k .. k + 3, read across the 4 columns and transposed.
#if VEC4
  let col = min(n0, last - 3u);
  let rows = mat4x4<f32>(
    vec4<f32>(b[(b_base + k * params.n + col) / 4u]),
    vec4<f32>(b[(b_base + (k + 1u) * params.n + col) / 4u]),
    vec4<f32>(b[(b_base + (k + 2u) * params.n + col) / 4u]),
    vec4<f32>(b[(b_base + (k + 3u) * params.n + col) / 4u]),
  );
  let t = transpose(rows);
  return array<Raw, 4>(t[0], t[1], t[2], t[3]);
#else
  var cols: array<Raw, 4>;
  for (var i = 0u; i < 4u; i++) {
    let base = b_base + min(k + i, params.k - 1u) * params.n;
    for (var c = 0u; c < 4u; c++) {
      cols[c][i] = select(0.0, f32(b[base + min(n0 + c, last)]), k + i < params.k);
    }
  }
  return cols;
#endif
#endif
}

// The 4 values along K of sub-step `h` (0 or 1) of a stored step, widened to f32.
fn part(v: Raw, h: u32) -> vec4<f32> {
#if PACKED
  let p = select(v.xy, v.zw, h == 1u);
  return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y));
#else
  return v;
#endif
}

// The 4×4 block of B of sub-step h as a matrix whose column c holds column n0 + c along K, so that
// row · block adds, for every column, the dot product with a row of A.
fn block(cols: array<Raw, 4>, h: u32) -> mat4x4<f32> {
  return mat4x4<f32>(part(cols[0], h), part(cols[1], h), part(cols[2], h), part(cols[3], h));
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
  let a_base = z * params.a_batch_stride;
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
#if ROWS32
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
#endif
  // This lane loads rows m0 + lane + SG·q of A (clamped: rows past M are computed, never stored).
  var a_rows: array<u32, ROWS / SG>;
  for (var q = 0u; q < ROWS / SG; q++) {
    a_rows[q] = min(m0 + lane + SG * q, params.m - 1u);
  }
  for (var k = 0u; k < params.k; k += KSTEP) {
    let cols = load_b(b_base, n0, k);
    var mine: array<Raw, ROWS / SG>;
    for (var q = 0u; q < ROWS / SG; q++) {
      mine[q] = load_a(a_base, a_rows[q], k);
    }
    for (var h = 0u; h < KSTEP / 4u; h++) {
      let bm = block(cols, h);
      acc0 += part(subgroupBroadcast(mine[0u / SG], 0u % SG), h) * bm;
      acc1 += part(subgroupBroadcast(mine[1u / SG], 1u % SG), h) * bm;
      acc2 += part(subgroupBroadcast(mine[2u / SG], 2u % SG), h) * bm;
      acc3 += part(subgroupBroadcast(mine[3u / SG], 3u % SG), h) * bm;
      acc4 += part(subgroupBroadcast(mine[4u / SG], 4u % SG), h) * bm;
      acc5 += part(subgroupBroadcast(mine[5u / SG], 5u % SG), h) * bm;
      acc6 += part(subgroupBroadcast(mine[6u / SG], 6u % SG), h) * bm;
      acc7 += part(subgroupBroadcast(mine[7u / SG], 7u % SG), h) * bm;
      acc8 += part(subgroupBroadcast(mine[8u / SG], 8u % SG), h) * bm;
      acc9 += part(subgroupBroadcast(mine[9u / SG], 9u % SG), h) * bm;
      acc10 += part(subgroupBroadcast(mine[10u / SG], 10u % SG), h) * bm;
      acc11 += part(subgroupBroadcast(mine[11u / SG], 11u % SG), h) * bm;
      acc12 += part(subgroupBroadcast(mine[12u / SG], 12u % SG), h) * bm;
      acc13 += part(subgroupBroadcast(mine[13u / SG], 13u % SG), h) * bm;
      acc14 += part(subgroupBroadcast(mine[14u / SG], 14u % SG), h) * bm;
      acc15 += part(subgroupBroadcast(mine[15u / SG], 15u % SG), h) * bm;
#if ROWS32
      acc16 += part(subgroupBroadcast(mine[16u / SG], 16u % SG), h) * bm;
      acc17 += part(subgroupBroadcast(mine[17u / SG], 17u % SG), h) * bm;
      acc18 += part(subgroupBroadcast(mine[18u / SG], 18u % SG), h) * bm;
      acc19 += part(subgroupBroadcast(mine[19u / SG], 19u % SG), h) * bm;
      acc20 += part(subgroupBroadcast(mine[20u / SG], 20u % SG), h) * bm;
      acc21 += part(subgroupBroadcast(mine[21u / SG], 21u % SG), h) * bm;
      acc22 += part(subgroupBroadcast(mine[22u / SG], 22u % SG), h) * bm;
      acc23 += part(subgroupBroadcast(mine[23u / SG], 23u % SG), h) * bm;
      acc24 += part(subgroupBroadcast(mine[24u / SG], 24u % SG), h) * bm;
      acc25 += part(subgroupBroadcast(mine[25u / SG], 25u % SG), h) * bm;
      acc26 += part(subgroupBroadcast(mine[26u / SG], 26u % SG), h) * bm;
      acc27 += part(subgroupBroadcast(mine[27u / SG], 27u % SG), h) * bm;
      acc28 += part(subgroupBroadcast(mine[28u / SG], 28u % SG), h) * bm;
      acc29 += part(subgroupBroadcast(mine[29u / SG], 29u % SG), h) * bm;
      acc30 += part(subgroupBroadcast(mine[30u / SG], 30u % SG), h) * bm;
      acc31 += part(subgroupBroadcast(mine[31u / SG], 31u % SG), h) * bm;
#endif
    }
  }

  // One epilogue in a loop, not one per accumulator: inlining the activation ROWS × 4 times made
  // compiling take seconds.
  let accs = array<vec4<f32>, ROWS>(
    acc0, acc1, acc2, acc3, acc4, acc5, acc6, acc7, acc8, acc9, acc10, acc11, acc12, acc13, acc14, acc15,
#if ROWS32
    acc16, acc17, acc18, acc19, acc20, acc21, acc22, acc23, acc24, acc25, acc26, acc27, acc28, acc29, acc30, acc31,
#endif
  );
  let out_base = z * params.out_batch_stride;
  for (var r = 0u; r < ROWS; r++) {
    store_row(out_base, m0 + r, n0, accs[r]);
  }
}
