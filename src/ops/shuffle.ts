/**
 * Data-movement ops on 4-D feature maps: pixel shuffle/unshuffle (torch's channel order, in NHWC or
 * NCHW), the NCHW ↔ NHWC permutes and general permutes. Each is one strided gather (shaders/shuffle.wgsl).
 */
import type { Runtime } from '../runtime/device.js';
import { numel, type Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 256;
const GATHER_DIMS = 6;

export type Layout = 'nhwc' | 'nchw';

export interface ShuffleOptions {
  /** Layout of input and output; the models keep activations NHWC (default). */
  layout?: Layout;
}

/** Output elements whose index along `dim` (of the gather's dims) is `from` or more are zeros. */
interface ZeroPadding {
  dim: number;
  from: number;
}

/**
 * Copies `x` into a new contiguous tensor of `outShape` whose element at multi-index i over `dims`
 * (row-major, `dims` multiply to the output size) is x[Σ i_d · strides[d]], or 0 under `zeros`.
 */
function gather(
  rt: Runtime, x: Tensor, outShape: readonly number[], dims: number[], strides: number[], label: string, zeros?: ZeroPadding,
): Tensor {
  // Whole vec4s when the innermost dim is contiguous in x and a multiple of 4 long (and not padded).
  const last = dims.length - 1;
  const vec4 =
    strides[last] === 1 && dims[last] % 4 === 0 && strides.every((st, d) => d === last || st % 4 === 0) && zeros?.dim !== last;
  const lanes = vec4 ? 4 : 1;
  const vDims = dims.map((n, d) => (d === last ? n / lanes : n));
  const vStrides = strides.map((st, d) => (d === last ? st : st / lanes));
  const pad = GATHER_DIMS - dims.length;
  const d = [...Array<number>(pad).fill(1), ...vDims];
  const s = [...Array<number>(pad).fill(0), ...vStrides];
  const items = numel(outShape) / lanes;
  const out = rt.empty(outShape, x.dtype, label);
  rt.dispatch({
    kernel: { shader: 'shuffle.wgsl', flags: vec4 ? ['VEC4'] : [], consts: { WG }, dtypes: { T: x.dtype } },
    label,
    params: new Params()
      .u32(items, d[1], d[2], d[3], d[4], d[5], ...s)
      .u32(zeros ? zeros.dim + pad : 0, zeros ? zeros.from : 0xffffffff)
      .data(),
    inputs: [x],
    outputs: [out],
    workgroups: rt.grid(items, WG),
    work: out.size,
  });
  return out;
}

function dims4(x: Tensor, op: string): [number, number, number, number] {
  if (x.shape.length !== 4) throw new Error(`${op}: expected a 4-D tensor, got [${x.shape.join(', ')}]`);
  return x.shape as unknown as [number, number, number, number];
}

/**
 * torch.nn.PixelUnshuffle(f): out[:, c·f² + i·f + j, y, x] = in[:, c, y·f + i, x·f + j] (NCHW terms);
 * in NHWC the same channel index lands in the last dimension.
 */
export function pixelUnshuffle(rt: Runtime, x: Tensor, f: number, { layout = 'nhwc' }: ShuffleOptions = {}): Tensor {
  const [b, d1, d2, d3] = dims4(x, 'pixelUnshuffle');
  const [c, h, w] = layout === 'nhwc' ? [d3, d1, d2] : [d1, d2, d3];
  if (h % f !== 0 || w % f !== 0) {
    throw new Error(`pixelUnshuffle: height ${h} and width ${w} must be divisible by the factor ${f}`);
  }
  const [oh, ow] = [h / f, w / f];
  if (layout === 'nhwc') {
    // Output order (b, y, x, c, i, j).
    return gather(rt, x, [b, oh, ow, c * f * f], [b, oh, ow, c, f, f], [h * w * c, f * w * c, f * c, 1, w * c, c], 'pixel_unshuffle');
  }
  // Output order (b, c, i, j, y, x).
  return gather(rt, x, [b, c * f * f, oh, ow], [b, c, f, f, oh, ow], [c * h * w, h * w, w, 1, f * w, f], 'pixel_unshuffle');
}

/** torch.nn.PixelShuffle(f), the inverse of `pixelUnshuffle`. */
export function pixelShuffle(rt: Runtime, x: Tensor, f: number, { layout = 'nhwc' }: ShuffleOptions = {}): Tensor {
  const [b, d1, d2, d3] = dims4(x, 'pixelShuffle');
  const [cin, h, w] = layout === 'nhwc' ? [d3, d1, d2] : [d1, d2, d3];
  if (cin % (f * f) !== 0) throw new Error(`pixelShuffle: ${cin} channels are not divisible by the factor squared (${f * f})`);
  const c = cin / (f * f);
  if (layout === 'nhwc') {
    // Output order (b, y, i, x, j, c).
    return gather(rt, x, [b, h * f, w * f, c], [b, h, f, w, f, c], [h * w * cin, w * cin, f, cin, 1, f * f], 'pixel_shuffle');
  }
  // Output order (b, c, y, i, x, j).
  return gather(rt, x, [b, c, h * f, w * f], [b, c, h, f, w, f], [cin * h * w, f * f * h * w, w, f * h * w, 1, h * w], 'pixel_shuffle');
}

/** [B, C, H, W] → [B, H, W, C]. */
export function nchwToNhwc(rt: Runtime, x: Tensor): Tensor {
  const [b, c, h, w] = dims4(x, 'nchwToNhwc');
  return gather(rt, x, [b, h, w, c], [b, h, w, c], [c * h * w, w, 1, h * w], 'nchw_to_nhwc');
}

/** [B, H, W, C] → [B, C, H, W]. */
export function nhwcToNchw(rt: Runtime, x: Tensor): Tensor {
  const [b, h, w, c] = dims4(x, 'nhwcToNchw');
  return gather(rt, x, [b, c, h, w], [b, c, h, w], [h * w * c, 1, w * c, c], 'nhwc_to_nchw');
}

/**
 * torch's `x.permute(order).contiguous()` for up to 6 dimensions; with `padTo`, output dim `dim`
 * is `size` long, zeros past the input's extent.
 */
export function permute(rt: Runtime, x: Tensor, order: readonly number[], padTo?: { dim: number; size: number }): Tensor {
  const rank = x.shape.length;
  if (rank > GATHER_DIMS || order.length !== rank || [...order].sort((p, q) => p - q).some((d, i) => d !== i)) {
    throw new Error(`permute: order [${order.join(', ')}] is not a permutation of the ${rank} dims of [${x.shape.join(', ')}]`);
  }
  const strides = x.shape.map((_, d) => x.shape.slice(d + 1).reduce((p, n) => p * n, 1));
  const dims = order.map((d) => x.shape[d]);
  if (padTo && !(Number.isInteger(padTo.dim) && padTo.dim >= 0 && padTo.dim < rank && padTo.size >= dims[padTo.dim])) {
    throw new Error(`permute: cannot pad output dim ${padTo.dim} of [${dims.join(', ')}] to ${padTo.size}`);
  }
  const outDims = dims.map((n, d) => (padTo && d === padTo.dim ? padTo.size : n));
  const zeros = padTo && { dim: padTo.dim, from: dims[padTo.dim] };
  return gather(rt, x, outDims, outDims, order.map((d) => strides[d]), 'permute', zeros);
}
