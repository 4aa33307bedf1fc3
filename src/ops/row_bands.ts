/**
 * Bands of rows of NHWC feature maps: a band copied out of a map, and a band written into one. A
 * model whose map at full size exceeds a storage binding computes it band by band.
 */
import type { Runtime } from '../runtime/device.js';
import { bytesPerElement } from '../runtime/dtype.js';
import type { Tensor } from '../runtime/tensor.js';

function rowBytes(x: Tensor): number {
  const [, , w, c] = x.shape;
  return w * c * bytesPerElement(x.dtype);
}

/** Whether bands of `x`-shaped maps can be copied (each row a whole number of 4-byte words). */
export function rowsCopyable(width: number, channels: number, bytesPerValue: number): boolean {
  return (width * channels * bytesPerValue) % 4 === 0;
}

function check(op: string, x: Tensor, start: number, count: number): void {
  const [, h, w, c] = x.shape;
  if (x.shape.length !== 4 || !Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 1 || start + count > h) {
    throw new Error(`${op}: rows ${start} .. ${start + count} are not within the NHWC map [${x.shape.join(', ')}]`);
  }
  if (!rowsCopyable(w, c, bytesPerElement(x.dtype))) {
    throw new Error(`${op}: rows of [${x.shape.join(', ')}] ${x.dtype} are not a whole number of 4-byte words`);
  }
}

/** x[:, start : start + count] of an NHWC map, as a new tensor. */
export function sliceRows(rt: Runtime, x: Tensor, start: number, count: number): Tensor {
  check('sliceRows', x, start, count);
  const [b, h, w, c] = x.shape;
  const out = rt.empty([b, count, w, c], x.dtype, 'rows');
  const bytes = rowBytes(x);
  for (let n = 0; n < b; n++) rt.copyBytes(x, (n * h + start) * bytes, out, n * count * bytes, count * bytes);
  return out;
}

/** dst[:, start : start + band rows] = band, for NHWC maps of the same batch, width and channels. */
export function writeRows(rt: Runtime, band: Tensor, dst: Tensor, start: number): void {
  const [b, count, w, c] = band.shape;
  if (dst.shape[0] !== b || dst.shape[2] !== w || dst.shape[3] !== c || dst.dtype !== band.dtype) {
    throw new Error(`writeRows: band [${band.shape.join(', ')}] ${band.dtype} does not fit the rows of [${dst.shape.join(', ')}] ${dst.dtype}`);
  }
  check('writeRows', dst, start, count);
  const h = dst.shape[1];
  const bytes = rowBytes(dst);
  for (let n = 0; n < b; n++) rt.copyBytes(band, n * count * bytes, dst, (n * h + start) * bytes, count * bytes);
}
