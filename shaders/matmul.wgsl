// Batched GEMM with a fused epilogue, accumulated in f32:
//   out[z, m, n] = act(alpha · Σ_k a[z, m, k] · B[z, k, n] + bias[n]) + residual[z, m, n]
// `a` is [batch, M, K] (type T). B comes from `b` (type W) stored [batch, N, K] when B_NK is set
// (PyTorch Linear weights, transposeB) and [batch, K, N] otherwise; a batch stride of 0 shares it.
//
// Tiling: WG_M × WG_N threads compute a (4·WG_M) × (4·WG_N) block of `out`, stepping K by TK.
// Both operand tiles sit in workgroup memory k-major as vec4s, so one k step is two vec4 reads and
// 16 FMAs per thread. A thread owns 4 consecutive rows (one vec4 of tile_a) and the 4 columns
// tx + WG_N·j (one vec4 of tile_b, packed that way at load): neighbouring threads read neighbouring
// vec4s (no bank conflicts) and store neighbouring columns (coalesced).
// VEC4 reads global memory 4 elements at a time along the contiguous axis (the caller guarantees
// K % 4 == 0, and N % 4 == 0 when B is [K, N]); without it every element is read on its own.

#include "common/activations.wgsl"

const ACT_NONE = 0u;
const ACT_GELU = 1u;
const ACT_SILU = 2u;
const ACT_LEAKY_RELU = 3u;
const ACT_QUICK_GELU = 4u;
const LEAKY_RELU_SLOPE = 0.2;

const TM = 4u * WG_M;
const TN = 4u * WG_N;
const THREADS = WG_M * WG_N;

struct Params {
  m: u32,
  n: u32,
  k: u32,
  a_batch_stride: u32,
  b_batch_stride: u32,
  out_batch_stride: u32,
  alpha: f32,
}

@group(0) @binding(0) var<uniform> params: Params;
#if VEC4
@group(0) @binding(1) var<storage, read> a: array<vec4<T>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<W>>;
#else
@group(0) @binding(1) var<storage, read> a: array<T>;
@group(0) @binding(2) var<storage, read> b: array<W>;
#endif
#if BIAS
const BIAS_BINDINGS = 1u;
@group(0) @binding(3) var<storage, read> bias: array<W>;
#else
const BIAS_BINDINGS = 0u;
#endif
#if RESIDUAL
const RESIDUAL_BINDINGS = 1u;
@group(0) @binding(3u + BIAS_BINDINGS) var<storage, read> residual: array<T>;
#else
const RESIDUAL_BINDINGS = 0u;
#endif
@group(0) @binding(3u + BIAS_BINDINGS + RESIDUAL_BINDINGS) var<storage, read_write> out: array<T>;

// tile_a[k · WG_M + r / 4][r % 4] = A[m0 + r, k0 + k]
var<workgroup> tile_a: array<vec4<f32>, TK * WG_M>;
// tile_b[k · WG_N + c % WG_N][c / WG_N] = B[k0 + k, n0 + c]
var<workgroup> tile_b: array<vec4<f32>, TK * WG_N>;

fn put_a(k: u32, row: u32, v: f32) {
  tile_a[k * WG_M + row / 4u][row % 4u] = v;
}

fn put_b(k: u32, col: u32, v: f32) {
  tile_b[k * WG_N + col % WG_N][col / WG_N] = v;
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

fn activate(v: f32) -> f32 {
  if (ACT == ACT_GELU) {
    return gelu_erf(v);
  }
  if (ACT == ACT_SILU) {
    return silu(v);
  }
  if (ACT == ACT_LEAKY_RELU) {
    return leaky_relu(v, LEAKY_RELU_SLOPE);
  }
  if (ACT == ACT_QUICK_GELU) {
    return quick_gelu(v);
  }
  return v;
}

@compute @workgroup_size(WG_N, WG_M)
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
  let tx = lid.x;
  let ty = lid.y;
  let tid = ty * WG_N + tx;
  let n0 = wid.x * TN;
  let m0 = wid.y * TM;
  let z = wid.z;
  let a_base = z * params.a_batch_stride;
  let b_base = z * params.b_batch_stride;

  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < params.k; k0 += TK) {
    workgroupBarrier();
    load_a_tile(tid, a_base, m0, k0);
    load_b_tile(tid, b_base, n0, k0);
    workgroupBarrier();
    for (var kk = 0u; kk < TK; kk++) {
      let av = tile_a[kk * WG_M + ty];
      let bv = tile_b[kk * WG_N + tx];
      acc[0] = fma(vec4<f32>(av.x), bv, acc[0]);
      acc[1] = fma(vec4<f32>(av.y), bv, acc[1]);
      acc[2] = fma(vec4<f32>(av.z), bv, acc[2]);
      acc[3] = fma(vec4<f32>(av.w), bv, acc[3]);
    }
  }

  let out_base = z * params.out_batch_stride;
  for (var i = 0u; i < 4u; i++) {
    let m = m0 + 4u * ty + i;
    if (m >= params.m) {
      break;
    }
    for (var j = 0u; j < 4u; j++) {
      let n = n0 + tx + WG_N * j;
      if (n < params.n) {
        let idx = out_base + m * params.n + n;
        var v = acc[i][j] * params.alpha;
#if BIAS
        v += f32(bias[n]);
#endif
        v = activate(v);
#if RESIDUAL
        v += f32(residual[idx]);
#endif
        out[idx] = T(v);
      }
    }
  }
}
