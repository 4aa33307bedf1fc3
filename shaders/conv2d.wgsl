// Convolution as an implicit GEMM over NHWC activations (no im2col buffer):
//   out[row, n] = bias[n] + Σ_k A[row, k] · B[k, n],   k = (ty, tx, ci)
// A row is one output position (b, qy, qx) of this dispatch's grid; A[row, k] is gathered from x at
//   iy = qy·in_step_y + in_off_y + tap_dir·ty   (ix alike)
// and B[k, n] is the tap-major weight [kH, kW, Cout, Cin/groups] at kernel tap
//   w_tap0 + ty·w_tap_step_y + tx·w_tap_step_x.
// conv2d: in_step = stride, in_off = -padding, tap_dir = +1, taps = the whole kernel, one dispatch
// with workgroup_id.z = group. conv_transpose2d: one dispatch per output phase (oy mod s, ox mod s);
// that phase's taps are ky ≡ oy + padding (mod s), read at iy = qy + offset - ty (tap_dir = -1).
// Output position (qy·out_step_y + out_off_y, qx·out_step_x + out_off_x).
//
// Tiles: a workgroup of WG_M × WG_N threads computes BM × BN = (4·WG_M) × (4·WG_N) outputs, each
// thread a 4 × 4 block held in f32 registers; K advances BK at a time through workgroup memory.
// Tile (row block, column block) is workgroup (x + y·nx) and the group is workgroup z.
// Every thread loads quads of 4 consecutive k. VEC4 (Cin/groups and Cout/groups multiples of 4):
// a quad never straddles a tap, so it is one vec4 load, and outputs are stored as vec4.

struct Params {
  in_h: u32,
  in_w: u32,
  in_c: u32,
  cin_g: u32,
  grid_h: u32,
  grid_w: u32,
  rows: u32,
  k: u32,
  taps_x: u32,
  in_step_y: u32,
  in_step_x: u32,
  in_off_y: i32,
  in_off_x: i32,
  tap_dir: i32,
  w_tap0: u32,
  w_tap_step_y: u32,
  w_tap_step_x: u32,
  out_h: u32,
  out_w: u32,
  out_c: u32,
  cout_g: u32,
  out_step_y: u32,
  out_step_x: u32,
  out_off_y: u32,
  out_off_x: u32,
}

#if VEC4
alias XV = vec4<T>;
alias WV = vec4<W>;
#else
alias XV = T;
alias WV = W;
#endif

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<XV>;
@group(0) @binding(2) var<storage, read> weight: array<WV>;
#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<W>;
@group(0) @binding(4) var<storage, read_write> out: array<XV>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<XV>;
#endif

const BM: u32 = 4u * WG_M;
const BN: u32 = 4u * WG_N;
const THREADS: u32 = WG_M * WG_N;
const QUADS_PER_ROW: u32 = BK / 4u;
const A_LOADS: u32 = BM * QUADS_PER_ROW / THREADS;
const B_LOADS: u32 = BN * QUADS_PER_ROW / THREADS;

// [k][row] and [k][n], four rows (columns) per vec4, so the inner product reads one vec4 of each.
var<workgroup> a_tile: array<vec4<f32>, BK * BM / 4u>;
var<workgroup> b_tile: array<vec4<f32>, BK * BN / 4u>;

// Where one GEMM row reads its input: image start and the tap-(0, 0) position; valid = row < rows.
struct RowOrigin {
  image: u32,
  iy: i32,
  ix: i32,
  valid: bool,
}

fn row_origin(row: u32) -> RowOrigin {
  let qx = row % params.grid_w;
  let rest = row / params.grid_w;
  let qy = rest % params.grid_h;
  let b = rest / params.grid_h;
  return RowOrigin(
    b * params.in_h * params.in_w,
    i32(qy * params.in_step_y) + params.in_off_y,
    i32(qx * params.in_step_x) + params.in_off_x,
    row < params.rows,
  );
}

const IN_PADDING: u32 = 0xffffffffu;

// Element offset of input pixel (iy, ix) of the origin's image; IN_PADDING when it lies in zero padding.
fn pixel_offset(o: RowOrigin, iy_in: i32, ix_in: i32) -> u32 {
  var iy = iy_in;
  var ix = ix_in;
#if REPLICATE
  iy = clamp(iy, 0, i32(params.in_h) - 1);
  ix = clamp(ix, 0, i32(params.in_w) - 1);
#else
  if (iy < 0 || ix < 0 || iy >= i32(params.in_h) || ix >= i32(params.in_w)) {
    return IN_PADDING;
  }
#endif
  return (o.image + u32(iy) * params.in_w + u32(ix)) * params.in_c;
}

// Reduction index k → (ty, tx, ci) as (tap row, tap column, channel within the group).
fn split_k(k: u32) -> vec3<u32> {
  let tap = k / params.cin_g;
  return vec3<u32>(tap / params.taps_x, tap % params.taps_x, k % params.cin_g);
}

fn input_value(o: RowOrigin, k: u32, group: u32) -> vec4<f32> {
#if VEC4
  // cin_g % 4 == 0: the quad k..k+3 shares one tap and is 4 consecutive channels.
  if (!o.valid || k >= params.k) {
    return vec4<f32>(0.0);
  }
  let t = split_k(k);
  let p = pixel_offset(o, o.iy + params.tap_dir * i32(t.x), o.ix + params.tap_dir * i32(t.y));
  if (p == IN_PADDING) {
    return vec4<f32>(0.0);
  }
  return vec4<f32>(x[(p + group * params.cin_g + t.z) / 4u]);
#else
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let kj = k + j;
    if (o.valid && kj < params.k) {
      let t = split_k(kj);
      let p = pixel_offset(o, o.iy + params.tap_dir * i32(t.x), o.ix + params.tap_dir * i32(t.y));
      if (p != IN_PADDING) {
        v[j] = f32(x[p + group * params.cin_g + t.z]);
      }
    }
  }
  return v;
#endif
}

fn weight_index(k: u32, n_global: u32) -> u32 {
  let t = split_k(k);
  let tap = params.w_tap0 + t.x * params.w_tap_step_y + t.y * params.w_tap_step_x;
  return (tap * params.out_c + n_global) * params.cin_g + t.z;
}

fn weight_value(k: u32, n: u32, group: u32) -> vec4<f32> {
  if (n >= params.cout_g) {
    return vec4<f32>(0.0);
  }
  let n_global = group * params.cout_g + n;
#if VEC4
  if (k >= params.k) {
    return vec4<f32>(0.0);
  }
  return vec4<f32>(weight[weight_index(k, n_global) / 4u]);
#else
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (k + j < params.k) {
      v[j] = f32(weight[weight_index(k + j, n_global)]);
    }
  }
  return v;
#endif
}

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

  var acc: array<vec4<f32>, 4>;
  for (var k0 = 0u; k0 < params.k; k0 += BK) {
    for (var l = 0u; l < A_LOADS; l++) {
      let q = lidx + l * THREADS;
      let r = q / QUADS_PER_ROW;
      let kq = (q % QUADS_PER_ROW) * 4u;
      let v = input_value(origins[l], k0 + kq, group);
      for (var j = 0u; j < 4u; j++) {
        a_tile[(kq + j) * (BM / 4u) + r / 4u][r % 4u] = v[j];
      }
    }
    for (var l = 0u; l < B_LOADS; l++) {
      let q = lidx + l * THREADS;
      let n = q / QUADS_PER_ROW;
      let kq = (q % QUADS_PER_ROW) * 4u;
      let v = weight_value(k0 + kq, n0 + n, group);
      for (var j = 0u; j < 4u; j++) {
        b_tile[(kq + j) * (BN / 4u) + n / 4u][n % 4u] = v[j];
      }
    }
    workgroupBarrier();
    for (var kk = 0u; kk < BK; kk++) {
      let a = a_tile[kk * (BM / 4u) + lid.y];
      let b = b_tile[kk * (BN / 4u) + lid.x];
      for (var i = 0u; i < 4u; i++) {
        acc[i] = fma(vec4<f32>(a[i]), b, acc[i]);
      }
    }
    workgroupBarrier();
  }

  let n = n0 + lid.x * 4u;
  if (n >= params.cout_g) {
    return;
  }
  var bias_v = vec4<f32>(0.0);
#if HAS_BIAS
  for (var j = 0u; j < 4u; j++) {
    if (n + j < params.cout_g) {
      bias_v[j] = f32(bias[group * params.cout_g + n + j]);
    }
  }
#endif
  for (var i = 0u; i < 4u; i++) {
    let row = row0 + lid.y * 4u + i;
    if (row >= params.rows) {
      break;
    }
    let qx = row % params.grid_w;
    let rest = row / params.grid_w;
    let qy = rest % params.grid_h;
    let b = rest / params.grid_h;
    let oy = qy * params.out_step_y + params.out_off_y;
    let ox = qx * params.out_step_x + params.out_off_x;
    let base = ((b * params.out_h + oy) * params.out_w + ox) * params.out_c + group * params.cout_g + n;
    let v = acc[i] + bias_v;
#if VEC4
    out[base / 4u] = XV(v);
#else
    for (var j = 0u; j < 4u; j++) {
      if (n + j < params.cout_g) {
        out[base + j] = T(v[j]);
      }
    }
#endif
  }
}
