import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const TPR = 256;

/**
 * torch.nn.functional.group_norm(x, groups, weight, bias, eps) for an NHWC tensor `x` [B, H, W, C]
 * (group g = channels g·C/groups .. (g+1)·C/groups − 1, as in NCHW). Statistics in f32; one
 * workgroup per (batch, group).
 */
export function groupNorm(rt: Runtime, x: Tensor, groups: number, weight: Tensor, bias: Tensor, eps: number): Tensor {
  if (x.shape.length !== 4) throw new Error(`groupNorm: expected an NHWC tensor, got [${x.shape.join(', ')}]`);
  const [b, h, w, c] = x.shape;
  if (!Number.isInteger(groups) || groups < 1 || c % groups !== 0) {
    throw new Error(`groupNorm: ${c} channels do not split into ${groups} groups`);
  }
  if (weight.size !== c || bias.size !== c) {
    throw new Error(`groupNorm: weight [${weight.shape.join(', ')}] and bias [${bias.shape.join(', ')}] must hold ${c} values`);
  }
  const out = rt.empty(x.shape, x.dtype, 'group_norm');
  rt.dispatch({
    kernel: { shader: 'group_norm.wgsl', consts: { TPR, RPW: 1 }, dtypes: { T: x.dtype, W: weight.dtype } },
    label: 'group_norm',
    params: new Params().u32(h * w, c, groups, c / groups).f32(eps).data(),
    inputs: [x, weight, bias],
    outputs: [out],
    workgroups: rt.grid(b * groups, 1),
  });
  return out;
}
