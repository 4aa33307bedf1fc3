import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 256;

/**
 * torch.nn.ReplicationPad2d(pad) over NHWC `x` [B, H, W, C] → [B, H + 2·pad, W + 2·pad, C], edge
 * pixels repeated. (Convolutions take `paddingMode: 'replicate'` directly; this materialises the
 * padded map, e.g. where it is a recorded module output.)
 */
export function replicationPad2d(rt: Runtime, x: Tensor, pad: number): Tensor {
  if (x.shape.length !== 4) throw new Error(`replicationPad2d: expected NHWC input [B, H, W, C], got [${x.shape.join(', ')}]`);
  const [b, h, w, c] = x.shape;
  if (!Number.isInteger(pad) || pad < 0 || h === 0 || w === 0) {
    throw new Error(`replicationPad2d: cannot pad [${x.shape.join(', ')}] by ${pad}`);
  }
  const out = rt.empty([b, h + 2 * pad, w + 2 * pad, c], x.dtype, 'replication_pad2d');
  rt.dispatch({
    kernel: { shader: 'pad.wgsl', consts: { WG }, dtypes: { T: x.dtype } },
    label: 'replication_pad2d',
    params: new Params().u32(out.size, h, w, c, h + 2 * pad, w + 2 * pad).i32(pad).data(),
    inputs: [x],
    outputs: [out],
    workgroups: rt.grid(out.size, WG),
  });
  return out;
}
