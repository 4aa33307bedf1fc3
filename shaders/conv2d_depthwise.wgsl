// Depthwise 3×3 convolution, stride 1, over NHWC activations (ResBlock / MixingResidualBlock).
// One thread computes PX neighbouring output pixels of one row for one channel vector (4 channels
// with VEC4, else 1): its 9 weights stay in registers and each of the 3 × (PX + 2) input pixels is
// read once. Neighbouring threads take neighbouring channel vectors, so every load is contiguous.
// Padding `pad` is zeros, or with REPLICATE edge replication (torch ReplicationPad2d then a valid
// convolution). Weights are tap-major [3, 3, C] (conv2d's [kH, kW, Cout, Cin/groups] with Cin/groups = 1).

struct Params {
  in_h: u32,
  in_w: u32,
  c_vecs: u32,
  out_h: u32,
  out_w: u32,
  x_blocks: u32,
  items: u32,
  pad: i32,
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
@group(0) @binding(3) var<storage, read> bias: array<WV>;
@group(0) @binding(4) var<storage, read_write> out: array<V>;
#else
@group(0) @binding(3) var<storage, read_write> out: array<V>;
#endif

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let id = gid.x + gid.y * nwg.x * WG;
  if (id >= params.items) {
    return;
  }
  let cv = id % params.c_vecs;
  var rest = id / params.c_vecs;
  let ox0 = (rest % params.x_blocks) * PX;
  rest /= params.x_blocks;
  let oy = rest % params.out_h;
  let b = rest / params.out_h;

  var w: array<F, 9>;
  for (var t = 0u; t < 9u; t++) {
    w[t] = F(weight[t * params.c_vecs + cv]);
  }
  var acc: array<F, PX>;
#if HAS_BIAS
  let bias_v = F(bias[cv]);
  for (var p = 0u; p < PX; p++) {
    acc[p] = bias_v;
  }
#endif

  for (var ky = 0u; ky < 3u; ky++) {
    var iy = i32(oy + ky) - params.pad;
#if REPLICATE
    iy = clamp(iy, 0, i32(params.in_h) - 1);
#else
    if (iy < 0 || iy >= i32(params.in_h)) {
      continue;
    }
#endif
    let row = (b * params.in_h + u32(iy)) * params.in_w;
    for (var s = 0u; s < PX + 2u; s++) {
      var ix = i32(ox0 + s) - params.pad;
#if REPLICATE
      ix = clamp(ix, 0, i32(params.in_w) - 1);
#else
      if (ix < 0 || ix >= i32(params.in_w)) {
        continue;
      }
#endif
      let v = F(x[(row + u32(ix)) * params.c_vecs + cv]);
      // Input column s feeds output p through kernel column kx = s - p.
      for (var kx = 0u; kx < 3u; kx++) {
        if (s >= kx && s - kx < PX) {
          acc[s - kx] = fma(w[ky * 3u + kx], v, acc[s - kx]);
        }
      }
    }
  }

  for (var p = 0u; p < PX; p++) {
    let ox = ox0 + p;
    if (ox < params.out_w) {
      out[((b * params.out_h + oy) * params.out_w + ox) * params.c_vecs + cv] = V(acc[p]);
    }
  }
}
