// Batched GEMM for GPUs emulated on a CPU (Mesa's lavapipe/llvmpipe): the same product, bindings,
// flags (B_NK, VEC4, BIAS, RESIDUAL, ACT) and fused epilogue as matmul.wgsl, in the register tiles
// of common/register_tile.wgsl (its header says why they suit a CPU). Workgroup (x, y, z) computes
// rows y·ROWS .. of columns x·4·SG .. of batch entry z.
// VEC4 reads 4 elements at a time along the contiguous axis (K % 4 == 0, and N % 4 == 0 when B is
// [K, N]); without it, K is walked 4 at a time with the tail masked.

#include "common/matmul_epilogue.wgsl"
#include "common/register_tile.wgsl"

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

// This workgroup's tile: its first row and batch entry, this lane's first column, and the rows of A
// the lane loads (clamped: rows past M are computed, never stored).
var<private> m0: u32;
var<private> n0: u32;
var<private> a_base: u32;
var<private> b_base: u32;
var<private> out_base: u32;
var<private> a_rows: array<u32, ROWS / SG>;

fn tile_begin(wid: vec3<u32>, nwg: vec3<u32>, lane: u32) -> bool {
  n0 = (wid.x * SG + lane) * 4u;
  m0 = wid.y * ROWS;
  a_base = wid.z * params.a_batch_stride + params.a_offset;
  b_base = wid.z * params.b_batch_stride;
  out_base = wid.z * params.out_batch_stride + params.out_offset;
  for (var q = 0u; q < ROWS / SG; q++) {
    a_rows[q] = min(m0 + lane + SG * q, params.m - 1u);
  }
  return true;
}

fn tile_k() -> u32 {
  return params.k;
}

fn tile_load_a(q: u32, k: u32) -> vec4<f32> {
  return load_a(a_base, a_rows[q], k);
}

fn tile_load_b(k: u32) -> mat4x4<f32> {
  return load_b(b_base, n0, k);
}

fn tile_store(r: u32, acc: vec4<f32>) {
  let m = m0 + r;
  if (m < params.m) {
    store_quad(out_base + m * params.n, n0, acc);
  }
}
