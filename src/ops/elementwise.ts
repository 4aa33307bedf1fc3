import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 256;

export type BinaryOp = 'add' | 'mul' | 'sub';

/**
 * `a (op) b`; `b` may be smaller than `a` when `a.size` is a multiple of `b.size`: it then repeats
 * (a trailing-block broadcast, e.g. a per-channel vector against an NHWC activation).
 */
export function binary(rt: Runtime, op: BinaryOp, a: Tensor, b: Tensor, out?: Tensor): Tensor {
  if (a.size % b.size !== 0) {
    throw new Error(`${op}: cannot broadcast [${b.shape.join(', ')}] against [${a.shape.join(', ')}]`);
  }
  const result = out ?? rt.empty(a.shape, a.dtype, op);
  rt.dispatch({
    kernel: {
      shader: 'elementwise.wgsl',
      flags: [`OP_${op.toUpperCase()}`],
      consts: { WG },
      dtypes: { T: a.dtype },
    },
    label: op,
    params: new Params().u32(a.size, b.size).data(),
    inputs: [a, b],
    outputs: [result],
    workgroups: rt.grid(a.size, WG),
  });
  return result;
}

export const add = (rt: Runtime, a: Tensor, b: Tensor, out?: Tensor) => binary(rt, 'add', a, b, out);
export const mul = (rt: Runtime, a: Tensor, b: Tensor, out?: Tensor) => binary(rt, 'mul', a, b, out);
