// Replication padding of NHWC activations (torch.nn.ReplicationPad2d): output pixel (y, x) copies
// input pixel (clamp(y − pad, 0, H − 1), clamp(x − pad, 0, W − 1)). Moves bytes only, so T is
// copied as is.

struct Params {
  n: u32,
  in_h: u32,
  in_w: u32,
  channels: u32,
  out_h: u32,
  out_w: u32,
  pad: i32,
}

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var<storage, read> x: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<T>;

@compute @workgroup_size(WG)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.x + gid.y * nwg.x * WG;
  if (i >= params.n) {
    return;
  }
  let c = i % params.channels;
  var rest = i / params.channels;
  let ox = rest % params.out_w;
  rest /= params.out_w;
  let oy = rest % params.out_h;
  let b = rest / params.out_h;
  let iy = u32(clamp(i32(oy) - params.pad, 0, i32(params.in_h) - 1));
  let ix = u32(clamp(i32(ox) - params.pad, 0, i32(params.in_w) - 1));
  out[i] = x[((b * params.in_h + iy) * params.in_w + ix) * params.channels + c];
}
