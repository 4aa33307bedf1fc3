// One separable pass of a filtered resize along one axis: the source is viewed as
// [outer, in_len, inner] and the destination as [outer, out_len, inner]; destination index i of
// that axis is Σ_j w[i][j] · src[xmin_i + j] over the first xsize_i taps. Row i of `taps`
// (`row_len` floats, computed on the host) holds xmin_i, xsize_i, then the weights.
// In NHWC the width pass has inner = C and the height pass inner = W·C; either way neighbouring
// invocations differ in the innermost index, so loads and stores stay contiguous.
// S and D are the source and destination storage types (the intermediate of two passes is f32).

struct Params {
  n: u32,
  in_len: u32,
  out_len: u32,
  inner: u32,
  row_len: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> taps: array<f32>;
@group(0) @binding(2) var<storage, read> src: array<S>;
@group(0) @binding(3) var<storage, read_write> dst: array<D>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let k = i % params.inner;
  let rest = i / params.inner;
  let o = rest % params.out_len;
  let outer = rest / params.out_len;
  let row = o * params.row_len;
  let xmin = u32(taps[row]);
  let xsize = u32(taps[row + 1u]);
  var at = (outer * params.in_len + xmin) * params.inner + k;
  // torch starts from the first product and adds the others in tap order.
  var acc = f32(src[at]) * taps[row + 2u];
  for (var j = 1u; j < xsize; j++) {
    at += params.inner;
    acc += f32(src[at]) * taps[row + 2u + j];
  }
  dst[i] = D(acc);
}
