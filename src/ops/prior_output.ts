import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 256;

/**
 * WuerstchenPrior's output `(x_in − a) / (|1 − b| + 1e-5)` with a, b = head.chunk(2, channels):
 * `xIn` NCHW [B, C, H, W], `head` NHWC [B, H, W, 2C] → NCHW [B, C, H, W] in f32 whatever the
 * inputs' dtypes: where |1 − b| is small the quotient can pass f16's range.
 */
export function priorOutput(rt: Runtime, xIn: Tensor, head: Tensor): Tensor {
  const [b, c, h, w] = xIn.shape;
  if (xIn.shape.length !== 4 || head.shape.length !== 4 || head.shape.some((d, i) => d !== [b, h, w, 2 * c][i])) {
    throw new Error(`priorOutput: head [${head.shape.join(', ')}] must be [${b}, ${h}, ${w}, ${2 * c}] for x_in [${xIn.shape.join(', ')}]`);
  }
  const out = rt.empty(xIn.shape, 'f32', 'prior_output');
  rt.dispatch({
    kernel: { shader: 'prior_output.wgsl', consts: { WG }, dtypes: { T: head.dtype, X: xIn.dtype } },
    label: 'prior_output',
    params: new Params().u32(out.size, c, h * w).data(),
    inputs: [xIn, head],
    outputs: [out],
    workgroups: rt.grid(out.size, WG),
  });
  return out;
}
