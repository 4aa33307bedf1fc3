import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 256;

/**
 * TimestepBlock's `x · (1 + a) + b` for NHWC `x` [B, H, W, C], with a and b the two channel halves
 * of `ab` [B, 2C] (the mapper output, not chunked), broadcast over each batch entry's positions.
 */
export function timestepModulate(rt: Runtime, x: Tensor, ab: Tensor): Tensor {
  const batch = x.shape[0];
  const c = x.shape[x.shape.length - 1];
  if (x.shape.length < 2 || ab.shape.length !== 2 || ab.shape[0] !== batch || ab.shape[1] !== 2 * c) {
    throw new Error(`timestepModulate: ab [${ab.shape.join(', ')}] must be [${batch}, ${2 * c}] for x [${x.shape.join(', ')}]`);
  }
  if (ab.dtype !== x.dtype) throw new Error(`timestepModulate: ab is ${ab.dtype} but x is ${x.dtype}`);
  const out = rt.empty(x.shape, x.dtype, 'timestep_modulate');
  const lanes = c % 4 === 0 ? 4 : 1;
  const items = x.size / lanes;
  rt.dispatch({
    kernel: { shader: 'timestep_modulate.wgsl', flags: lanes === 4 ? ['VEC4'] : [], consts: { WG }, dtypes: { T: x.dtype } },
    label: 'timestep_modulate',
    params: new Params().u32(items, c / lanes, items / batch).data(),
    inputs: [x, ab],
    outputs: [out],
    workgroups: rt.grid(items, WG),
    work: x.size,
  });
  return out;
}
