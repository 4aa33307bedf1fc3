// The implicit-GEMM view of a convolution over NHWC activations, shared by conv2d.wgsl (workgroup
// tiles, GPUs) and conv2d_register.wgsl (register tiles, CPU-emulated GPUs):
//   out[row, n] = bias[n] + Σ_k A[row, k] · B[k, n],   k = (ty, tx, ci)
// A row is one output position (b, qy, qx) of this dispatch's grid; A[row, k] is gathered from x at
//   iy = qy·in_step_y + in_off_y + tap_dir·ty   (ix alike)
// and B[k, n] is the tap-major weight [kH, kW, Cout, Cin/groups] at kernel tap
//   w_tap0 + ty·w_tap_step_y + tx·w_tap_step_x.
// conv2d: in_step = stride, in_off = -padding, tap_dir = +1, taps = the whole kernel, one dispatch
// with workgroup_id.z = group. conv_transpose2d: one dispatch per output phase (oy mod s, ox mod s);
// that phase's taps are ky ≡ oy + padding (mod s), read at iy = qy + offset - ty (tap_dir = -1).
// Output position (qy·out_step_y + out_off_y, qx·out_step_x + out_off_x).
// Loads are quads of 4 consecutive k. VEC4 (Cin/groups and Cout/groups multiples of 4): a quad
// never straddles a tap, so it is one vec4 load, and outputs are stored as vec4.

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

#include "common/lanes.wgsl"
#if VEC4
alias WV = vec4<W>;
#else
alias WV = W;
#endif

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<V>;
@group(0) @binding(2) var<storage, read> weight: array<WV>;
#if HAS_BIAS
@group(0) @binding(3) var<storage, read> bias: array<W>;
@group(0) @binding(4) var<storage, read_write> out: array<V>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<V>;
#endif

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

// The quad k .. k + 3, located once for every row and column that loads it: integer division
// is scalar on CPUs, and a register tile loads each quad for 8 operands. Under VEC4 the quad
// shares one tap (t); otherwise each element is located on its own.
struct KQuad {
  k: u32,
  t: vec3<u32>,
}

fn locate_k(k: u32) -> KQuad {
  return KQuad(k, split_k(k));
}

fn input_value(o: RowOrigin, kq: KQuad, group: u32) -> vec4<f32> {
#if VEC4
  // cin_g % 4 == 0: the quad is 4 consecutive channels of one tap.
  if (!o.valid || kq.k >= params.k) {
    return vec4<f32>(0.0);
  }
  let t = kq.t;
  let p = pixel_offset(o, o.iy + params.tap_dir * i32(t.x), o.ix + params.tap_dir * i32(t.y));
  if (p == IN_PADDING) {
    return vec4<f32>(0.0);
  }
  return vec4<f32>(x[(p + group * params.cin_g + t.z) / 4u]);
#else
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    let kj = kq.k + j;
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

fn weight_index(t: vec3<u32>, n_global: u32) -> u32 {
  let tap = params.w_tap0 + t.x * params.w_tap_step_y + t.y * params.w_tap_step_x;
  return (tap * params.out_c + n_global) * params.cin_g + t.z;
}

fn weight_value(kq: KQuad, n: u32, group: u32) -> vec4<f32> {
  if (n >= params.cout_g) {
    return vec4<f32>(0.0);
  }
  let n_global = group * params.cout_g + n;
#if VEC4
  if (kq.k >= params.k) {
    return vec4<f32>(0.0);
  }
  return vec4<f32>(weight[weight_index(kq.t, n_global) / 4u]);
#else
  var v = vec4<f32>(0.0);
  for (var j = 0u; j < 4u; j++) {
    if (kq.k + j < params.k) {
      v[j] = f32(weight[weight_index(split_k(kq.k + j), n_global)]);
    }
  }
  return v;
#endif
}

// Element offset of output column n (within the group) of GEMM row `row`.
fn output_offset(row: u32, group: u32, n: u32) -> u32 {
  let qx = row % params.grid_w;
  let rest = row / params.grid_w;
  let qy = rest % params.grid_h;
  let b = rest / params.grid_h;
  let oy = qy * params.out_step_y + params.out_off_y;
  let ox = qx * params.out_step_x + params.out_off_x;
  return ((b * params.out_h + oy) * params.out_w + ox) * params.out_c + group * params.cout_g + n;
}

// Stores columns n .. n + 4 (those below cout_g) of GEMM row `row`, bias added.
fn store_outputs(row: u32, group: u32, n: u32, acc: vec4<f32>) {
  var v = acc;
#if HAS_BIAS
  for (var j = 0u; j < 4u; j++) {
    if (n + j < params.cout_g) {
      v[j] += f32(bias[group * params.cout_g + n + j]);
    }
  }
#endif
  let base = output_offset(row, group, n);
#if VEC4
  out[base / 4u] = V(v);
#else
  for (var j = 0u; j < 4u; j++) {
    if (n + j < params.cout_g) {
      out[base + j] = T(v[j]);
    }
  }
#endif
}
