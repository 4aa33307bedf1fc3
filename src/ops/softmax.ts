import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import { rowLayout, type ThreadsPerRow } from './row_layout.js';

/**
 * The rows as attention scores: consecutive [queriesPerMatrix, cols] matrices, one per batch entry
 * and head (heads of a batch entry adjacent), with the masks of `AttentionOptions`.
 */
export interface ScoreMasks {
  heads: number;
  queriesPerMatrix: number;
  /** Query index of each matrix's first row when the rows are a window of the queries. */
  firstQuery: number;
  causal: boolean;
  /** [B, validCols]: 1 = attend. */
  keyPaddingMask?: Tensor;
}

export interface SoftmaxOptions {
  /** Only the first `validCols` columns take part; the rest are written as 0 (padded score rows). */
  validCols?: number;
  masks?: ScoreMasks;
  /** Forces a row tiling (tests exercise every variant). */
  threadsPerRow?: ThreadsPerRow;
}

/** torch.softmax(x, dim=-1), computed in f32. */
export function softmax(rt: Runtime, x: Tensor, { validCols, masks, threadsPerRow }: SoftmaxOptions = {}): Tensor {
  const cols = x.shape[x.shape.length - 1];
  const rows = x.size / cols;
  const valid = validCols ?? cols;
  if (!Number.isInteger(valid) || valid < 1 || valid > cols) {
    throw new Error(`softmax: validCols ${validCols} must be between 1 and the ${cols} columns`);
  }
  const mask = masks?.keyPaddingMask;
  if (masks && (rows % (masks.queriesPerMatrix * masks.heads) !== 0 || masks.firstQuery < 0)) {
    throw new Error(`softmax: ${rows} rows are not whole matrices of ${masks.heads} heads × ${masks.queriesPerMatrix} queries`);
  }
  if (masks && mask && (mask.shape.length !== 2 || mask.shape[1] !== valid || mask.shape[0] * masks.heads * masks.queriesPerMatrix !== rows)) {
    throw new Error(`softmax: keyPaddingMask [${mask.shape.join(', ')}] does not match ${rows} rows of ${valid} keys`);
  }
  const layout = rowLayout(rt, rows, cols, threadsPerRow);
  const out = rt.empty(x.shape, x.dtype, 'softmax');
  const flags = [...(masks?.causal ? ['CAUSAL'] : []), ...(mask ? ['PADDING_MASK'] : [])];
  rt.dispatch({
    kernel: { shader: 'softmax.wgsl', flags, consts: layout.consts, dtypes: { T: x.dtype, ...(mask ? { M: mask.dtype } : {}) } },
    label: 'softmax',
    params: new Params().u32(rows, cols, valid, masks?.queriesPerMatrix ?? 1, masks?.firstQuery ?? 0, masks?.heads ?? 1).data(),
    inputs: mask ? [x, mask] : [x],
    outputs: [out],
    workgroups: layout.workgroups,
  });
  return out;
}
