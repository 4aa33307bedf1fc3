/** A dense, contiguous float32 array on the host with its PyTorch shape (row-major). */
export interface HostTensor {
  shape: readonly number[];
  data: Float32Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new RangeError(`invalid tensor shape [${shape.join(', ')}]`);
    n *= d;
  }
  return n;
}
