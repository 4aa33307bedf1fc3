// Batched GEMM with a fused epilogue (common/matmul_epilogue.wgsl), accumulated in f32:
//   out[z, m, n] = act(alpha · Σ_k a[z, m, k] · B[z, k, n] + bias[n]) + residual[z, m, n]
// `a` is [batch, M, K] (type T). B comes from `b` (type W) stored [batch, N, K] when B_NK is set
// (PyTorch Linear weights, transposeB) and [batch, K, N] otherwise; a batch stride of 0 shares it.
//
// Tiling: WG_M × WG_N threads compute a (RM·WG_M) × (CN·WG_N) block of `out`, stepping K by TK.
// Both operand tiles sit in workgroup memory k-major as vec4s, so one k step is RM/4 + CN/4 vec4
// reads and RM·CN FMAs per thread. A thread owns RM consecutive rows (RM/4 vec4s of tile_a) and
// the CN columns tx + WG_N·j (CN/4 vec4s of tile_b, packed that way at load): neighbouring threads
// read neighbouring vec4s (no bank conflicts) and store neighbouring columns (coalesced).
// RM is 4 or 8 (ROWS8), CN 4 or 8 (COLS8). The accumulators are named variables, not an array:
// NVIDIA's compiler moved an indexed accumulator array to local memory once the epilogue held an
// activation (8× slower).
// VEC4 reads global memory 4 elements at a time along the contiguous axis (the caller guarantees
// K % 4 == 0, and N % 4 == 0 when B is [K, N]); without it every element is read on its own.
// GPUs a CPU emulates run matmul_register.wgsl instead: there workgroup memory costs as much as
// any other load.

#include "common/matmul_epilogue.wgsl"

const TM = RM * WG_M;
const TN = CN * WG_N;
const THREADS = WG_M * WG_N;
// vec4s of tile_b per k: a thread's columns are CN / 4 of them.
const B_GROUPS = CN / 4u;

// tile_a[k · TM/4 + r / 4][r % 4] = A[m0 + r, k0 + k]
var<workgroup> tile_a: array<vec4<f32>, TK * TM / 4u>;
// tile_b[(k · B_GROUPS + g) · WG_N + c % WG_N][(c / WG_N) % 4] = B[k0 + k, n0 + c], g = c / (4 · WG_N)
var<workgroup> tile_b: array<vec4<f32>, TK * TN / 4u>;

fn put_a(k: u32, row: u32, v: f32) {
  tile_a[k * (TM / 4u) + row / 4u][row % 4u] = v;
}

fn put_b(k: u32, col: u32, v: f32) {
  let g = col / (4u * WG_N);
  tile_b[(k * B_GROUPS + g) * WG_N + col % WG_N][(col / WG_N) % 4u] = v;
}

fn load_a_tile(tid: u32, a_base: u32, m0: u32, k0: u32) {
#if VEC4
  for (var l = tid; l < TM * TK / 4u; l += THREADS) {
    let row = l / (TK / 4u);
    let kk = 4u * (l % (TK / 4u));
    let m = m0 + row;
    let k = k0 + kk;
    var v = vec4<f32>(0.0);
    if (m < params.m && k < params.k) {
      v = vec4<f32>(a[(a_base + m * params.k + k) / 4u]);
    }
    put_a(kk, row, v.x);
    put_a(kk + 1u, row, v.y);
    put_a(kk + 2u, row, v.z);
    put_a(kk + 3u, row, v.w);
  }
#else
  for (var l = tid; l < TM * TK; l += THREADS) {
    let row = l / TK;
    let kk = l % TK;
    let m = m0 + row;
    let k = k0 + kk;
    var v = 0.0;
    if (m < params.m && k < params.k) {
      v = f32(a[a_base + m * params.k + k]);
    }
    put_a(kk, row, v);
  }
#endif
}

fn load_b_tile(tid: u32, b_base: u32, n0: u32, k0: u32) {
#if B_NK
#if VEC4
  for (var l = tid; l < TN * TK / 4u; l += THREADS) {
    let col = l / (TK / 4u);
    let kk = 4u * (l % (TK / 4u));
    let n = n0 + col;
    let k = k0 + kk;
    var v = vec4<f32>(0.0);
    if (n < params.n && k < params.k) {
      v = vec4<f32>(b[(b_base + n * params.k + k) / 4u]);
    }
    put_b(kk, col, v.x);
    put_b(kk + 1u, col, v.y);
    put_b(kk + 2u, col, v.z);
    put_b(kk + 3u, col, v.w);
  }
#else
  for (var l = tid; l < TN * TK; l += THREADS) {
    let col = l / TK;
    let kk = l % TK;
    let n = n0 + col;
    let k = k0 + kk;
    var v = 0.0;
    if (n < params.n && k < params.k) {
      v = f32(b[b_base + n * params.k + k]);
    }
    put_b(kk, col, v);
  }
#endif
#else
#if VEC4
  for (var l = tid; l < TN * TK / 4u; l += THREADS) {
    let kk = l / (TN / 4u);
    let col = 4u * (l % (TN / 4u));
    let n = n0 + col;
    let k = k0 + kk;
    var v = vec4<f32>(0.0);
    if (n < params.n && k < params.k) {
      v = vec4<f32>(b[(b_base + k * params.n + n) / 4u]);
    }
    put_b(kk, col, v.x);
    put_b(kk, col + 1u, v.y);
    put_b(kk, col + 2u, v.z);
    put_b(kk, col + 3u, v.w);
  }
#else
  for (var l = tid; l < TN * TK; l += THREADS) {
    let kk = l / TN;
    let col = l % TN;
    let n = n0 + col;
    let k = k0 + kk;
    var v = 0.0;
    if (n < params.n && k < params.k) {
      v = f32(b[b_base + k * params.n + n]);
    }
    put_b(kk, col, v);
  }
#endif
#endif
}

// Epilogue for one row of a thread's outputs: columns n, n + WG_N, n + 2·WG_N, n + 3·WG_N.
fn store_row(out_base: u32, m: u32, n: u32, acc: vec4<f32>) {
  if (m >= params.m) {
    return;
  }
  for (var j = 0u; j < 4u; j++) {
    let col = n + WG_N * j;
    if (col < params.n) {
      store_out(out_base + m * params.n + col, col, acc[j]);
    }
  }
}

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let tid = ty * WG_N + tx;
  let n0 = wid.x * TN;
  let m0 = wid.y * TM;
  let z = wid.z;
  let a_base = z * params.a_batch_stride + params.a_offset;
  let b_base = z * params.b_batch_stride;

  // accR: row R, columns tx + WG_N·j for j < 4; accRh: j = 4 .. 7 (COLS8).
  var acc0 = vec4<f32>(0.0);
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
#if ROWS8
  var acc4 = vec4<f32>(0.0);
  var acc5 = vec4<f32>(0.0);
  var acc6 = vec4<f32>(0.0);
  var acc7 = vec4<f32>(0.0);
#endif
#if COLS8
  var acc0h = vec4<f32>(0.0);
  var acc1h = vec4<f32>(0.0);
  var acc2h = vec4<f32>(0.0);
  var acc3h = vec4<f32>(0.0);
#if ROWS8
  var acc4h = vec4<f32>(0.0);
  var acc5h = vec4<f32>(0.0);
  var acc6h = vec4<f32>(0.0);
  var acc7h = vec4<f32>(0.0);
#endif
#endif
  let a_col = ty * (RM / 4u);
  for (var k0 = 0u; k0 < params.k; k0 += TK) {
    workgroupBarrier();
    load_a_tile(tid, a_base, m0, k0);
    load_b_tile(tid, b_base, n0, k0);
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let bv = tile_b[kk * B_GROUPS * WG_N + tx];
      let a0 = tile_a[kk * (TM / 4u) + a_col];
      acc0 = fma(vec4<f32>(a0.x), bv, acc0);
      acc1 = fma(vec4<f32>(a0.y), bv, acc1);
      acc2 = fma(vec4<f32>(a0.z), bv, acc2);
      acc3 = fma(vec4<f32>(a0.w), bv, acc3);
#if ROWS8
      let a1 = tile_a[kk * (TM / 4u) + a_col + 1u];
      acc4 = fma(vec4<f32>(a1.x), bv, acc4);
      acc5 = fma(vec4<f32>(a1.y), bv, acc5);
      acc6 = fma(vec4<f32>(a1.z), bv, acc6);
      acc7 = fma(vec4<f32>(a1.w), bv, acc7);
#endif
#if COLS8
      let bh = tile_b[(kk * B_GROUPS + 1u) * WG_N + tx];
      acc0h = fma(vec4<f32>(a0.x), bh, acc0h);
      acc1h = fma(vec4<f32>(a0.y), bh, acc1h);
      acc2h = fma(vec4<f32>(a0.z), bh, acc2h);
      acc3h = fma(vec4<f32>(a0.w), bh, acc3h);
#if ROWS8
      acc4h = fma(vec4<f32>(a1.x), bh, acc4h);
      acc5h = fma(vec4<f32>(a1.y), bh, acc5h);
      acc6h = fma(vec4<f32>(a1.z), bh, acc6h);
      acc7h = fma(vec4<f32>(a1.w), bh, acc7h);
#endif
#endif
    }
  }

  let out_base = z * params.out_batch_stride + params.out_offset;
  let row = m0 + RM * ty;
  let col = n0 + tx;
  store_row(out_base, row, col, acc0);
  store_row(out_base, row + 1u, col, acc1);
  store_row(out_base, row + 2u, col, acc2);
  store_row(out_base, row + 3u, col, acc3);
#if ROWS8
  store_row(out_base, row + 4u, col, acc4);
  store_row(out_base, row + 5u, col, acc5);
  store_row(out_base, row + 6u, col, acc6);
  store_row(out_base, row + 7u, col, acc7);
#endif
#if COLS8
  let col_h = col + 4u * WG_N;
  store_row(out_base, row, col_h, acc0h);
  store_row(out_base, row + 1u, col_h, acc1h);
  store_row(out_base, row + 2u, col_h, acc2h);
  store_row(out_base, row + 3u, col_h, acc3h);
#if ROWS8
  store_row(out_base, row + 4u, col_h, acc4h);
  store_row(out_base, row + 5u, col_h, acc5h);
  store_row(out_base, row + 6u, col_h, acc6h);
  store_row(out_base, row + 7u, col_h, acc7h);
#endif
#endif
}
