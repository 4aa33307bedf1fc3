import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 256;

/** `x` in another storage dtype (f16 falls back to f32 without `shader-f16`); a copy when they agree. */
export function cast(rt: Runtime, x: Tensor, dtype: DType): Tensor {
  const target = rt.storageDType(dtype);
  if (target === x.dtype) return rt.copy(x, 'cast');
  const out = rt.empty(x.shape, target, 'cast');
  rt.dispatch({
    kernel: { shader: 'cast.wgsl', consts: { WG }, dtypes: { S: x.dtype, D: target } },
    label: 'cast',
    params: new Params().u32(x.size).data(),
    inputs: [x],
    outputs: [out],
    workgroups: rt.grid(x.size, WG),
  });
  return out;
}
