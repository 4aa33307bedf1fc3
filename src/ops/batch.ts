import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';

/**
 * Items of the leading (batch) dimension, in the order given: `torch.cat([x] * 2)`,
 * `repeat_interleave`, `chunk(2)` halves. Pure buffer copies, recorded in order with the dispatches.
 */
export function gatherBatch(rt: Runtime, x: Tensor, indices: readonly number[], label = 'gather_batch'): Tensor {
  const [batch, ...item] = x.shape;
  const itemBytes = x.byteSize / batch;
  if (itemBytes % 4 !== 0) throw new Error(`${label}: a batch item of ${itemBytes} bytes is not a multiple of 4`);
  for (const i of indices) {
    if (!Number.isInteger(i) || i < 0 || i >= batch) throw new Error(`${label}: index ${i} outside a batch of ${batch}`);
  }
  const out = rt.empty([indices.length, ...item], x.dtype, label);
  indices.forEach((src, dst) =>
    rt.recorder.copy(x.buffer, x.byteOffset + src * itemBytes, out.buffer, out.byteOffset + dst * itemBytes, itemBytes),
  );
  return out;
}

/** Concatenation along the batch dimension. */
export function concatBatch(rt: Runtime, xs: readonly Tensor[], label = 'concat_batch'): Tensor {
  const [first] = xs;
  const item = first.shape.slice(1);
  for (const x of xs) {
    if (x.dtype !== first.dtype || x.shape.length !== first.shape.length || x.shape.slice(1).some((d, i) => d !== item[i])) {
      throw new Error(`${label}: cannot concatenate [${x.shape.join(', ')}] ${x.dtype} to [${first.shape.join(', ')}] ${first.dtype}`);
    }
  }
  const out = rt.empty([xs.reduce((n, x) => n + x.shape[0], 0), ...item], first.dtype, label);
  let offset = 0;
  for (const x of xs) {
    rt.recorder.copy(x.buffer, x.byteOffset, out.buffer, out.byteOffset + offset, x.byteSize);
    offset += x.byteSize;
  }
  return out;
}
