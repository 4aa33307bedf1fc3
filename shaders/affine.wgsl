// Per-channel affine map out = x · scale[c] + shift[c] over a contiguous tensor whose last
// dimension has `channels` entries (c = i mod channels), in f32 with one rounding (fma), as torch's
// CPU kernel computes inference BatchNorm from its folded scale and shift.

struct Params {
  n: u32,
  channels: u32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read> scale: array<W>;
@group(0) @binding(3) var<storage, read> shift: array<W>;
@group(0) @binding(4) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let c = i % params.channels;
  out[i] = T(fma(f32(x[i]), f32(scale[c]), f32(shift[c])));
}
