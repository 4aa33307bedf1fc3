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
  /** [B, columns]: 1 = attend. */
  keyPaddingMask?: Tensor;
}

export interface SoftmaxOptions {
  /** Output rows this long (≥ the input's), zeros past the input's columns: padding for a GEMM. */
  outCols?: number;
  masks?: ScoreMasks;
  /** Forces a row tiling (tests exercise every variant). */
  threadsPerRow?: ThreadsPerRow;
}

/** torch.softmax(x, dim=-1), computed in f32. */
export function softmax(rt: Runtime, x: Tensor, { outCols, masks, threadsPerRow }: SoftmaxOptions = {}): Tensor {
  const cols = x.shape[x.shape.length - 1];
  const rows = x.size / cols;
  const padded = outCols ?? cols;
  if (!Number.isInteger(padded) || padded < cols) {
    throw new Error(`softmax: outCols ${outCols} must be an integer of at least the ${cols} columns`);
  }
  const mask = masks?.keyPaddingMask;
  if (masks && (rows % (masks.queriesPerMatrix * masks.heads) !== 0 || masks.firstQuery < 0)) {
    throw new Error(`softmax: ${rows} rows are not whole matrices of ${masks.heads} heads × ${masks.queriesPerMatrix} queries`);
  }
  if (masks && mask && (mask.shape.length !== 2 || mask.shape[1] !== cols || mask.shape[0] * masks.heads * masks.queriesPerMatrix !== rows)) {
    throw new Error(`softmax: keyPaddingMask [${mask.shape.join(', ')}] does not match ${rows} rows of ${cols} keys`);
  }
  const layout = rowLayout(rt, rows, cols, threadsPerRow);
  const out = rt.empty([...x.shape.slice(0, -1), padded], x.dtype, 'softmax');
  const flags = [...(masks?.causal ? ['CAUSAL'] : []), ...(mask ? ['PADDING_MASK'] : [])];
  rt.dispatch({
    kernel: { shader: 'softmax.wgsl', flags, consts: layout.consts, dtypes: { T: x.dtype, ...(mask ? { M: mask.dtype } : {}) } },
    label: 'softmax',
    params: new Params().u32(rows, cols, padded, masks?.queriesPerMatrix ?? 1, masks?.firstQuery ?? 0, masks?.heads ?? 1).data(),
    inputs: mask ? [x, mask] : [x],
    outputs: [out],
    workgroups: layout.workgroups,
  });
  return out;
}
