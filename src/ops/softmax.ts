import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import { rowLayout, type ThreadsPerRow } from './row_layout.js';

export interface SoftmaxOptions {
  /** Forces a row tiling (tests exercise every variant). */
  threadsPerRow?: ThreadsPerRow;
}

/** torch.softmax(x, dim=-1), computed in f32. */
export function softmax(rt: Runtime, x: Tensor, { threadsPerRow }: SoftmaxOptions = {}): Tensor {
  const cols = x.shape[x.shape.length - 1];
  const rows = x.size / cols;
  const layout = rowLayout(rt, rows, cols, threadsPerRow);
  const out = rt.empty(x.shape, x.dtype, 'softmax');
  rt.dispatch({
    kernel: { shader: 'softmax.wgsl', consts: layout.consts, dtypes: { T: x.dtype } },
    label: 'softmax',
    params: new Params().u32(rows, cols).data(),
    inputs: [x],
    outputs: [out],
    workgroups: layout.workgroups,
  });
  return out;
}
