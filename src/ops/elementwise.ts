import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

const WG = 256;

export type BinaryOp = 'add' | 'mul' | 'sub';

function elementwise(rt: Runtime, op: BinaryOp | 'add_scaled' | 'lerp', a: Tensor, b: Tensor, weight: number, out?: Tensor): Tensor {
  if (a.size % b.size !== 0) {
    throw new Error(`${op}: cannot broadcast [${b.shape.join(', ')}] against [${a.shape.join(', ')}]`);
  }
  const result = out ?? rt.empty(a.shape, a.dtype, op);
  const lanes = a.size % 4 === 0 && b.size % 4 === 0 ? 4 : 1;
  const flags = [`OP_${op.toUpperCase()}`, ...(lanes === 4 ? ['VEC4'] : []), ...(b.size !== a.size ? ['BROADCAST'] : [])];
  const items = a.size / lanes;
  rt.dispatch({
    kernel: { shader: 'elementwise.wgsl', flags, consts: { WG }, dtypes: { T: a.dtype } },
    label: op,
    params: new Params().u32(items, b.size / lanes).f32(weight).data(),
    inputs: [a, b],
    outputs: [result],
    workgroups: rt.grid(items, WG),
    work: a.size,
  });
  return result;
}

/**
 * `a (op) b`; `b` may be smaller than `a` when `a.size` is a multiple of `b.size`: it then repeats
 * (a trailing-block broadcast, e.g. a per-channel vector against an NHWC activation).
 */
export function binary(rt: Runtime, op: BinaryOp, a: Tensor, b: Tensor, out?: Tensor): Tensor {
  return elementwise(rt, op, a, b, 0, out);
}

export const add = (rt: Runtime, a: Tensor, b: Tensor, out?: Tensor) => binary(rt, 'add', a, b, out);
export const mul = (rt: Runtime, a: Tensor, b: Tensor, out?: Tensor) => binary(rt, 'mul', a, b, out);

/** `a + b · weight` for a scalar weight (torch: a + b * w, rounded after the product and the sum); same shapes. */
export function addScaled(rt: Runtime, a: Tensor, b: Tensor, weight: number, out?: Tensor): Tensor {
  if (a.size !== b.size) {
    throw new Error(`addScaled: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
  return elementwise(rt, 'add_scaled', a, b, weight, out);
}

/** torch.lerp(a, b, weight) with a scalar weight (classifier-free guidance), bit-exact to torch's CPU kernel. */
export function lerp(rt: Runtime, a: Tensor, b: Tensor, weight: number, out?: Tensor): Tensor {
  if (a.size !== b.size) {
    throw new Error(`lerp: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] differ`);
  }
  return elementwise(rt, 'lerp', a, b, weight, out);
}

function channels(x: Tensor): number {
  return x.shape[x.shape.length - 1];
}

/** x · scale[c] + shift[c] over the last dimension (c), one rounding; e.g. an inference BatchNorm folded by `foldBatchNorm`. */
export function affine(rt: Runtime, x: Tensor, scale: Tensor, shift: Tensor): Tensor {
  const c = channels(x);
  if (scale.size !== c || shift.size !== c) {
    throw new Error(
      `affine: scale [${scale.shape.join(', ')}] and shift [${shift.shape.join(', ')}] must hold one value per channel (${c})`,
    );
  }
  const out = rt.empty(x.shape, x.dtype, 'affine');
  rt.dispatch({
    kernel: { shader: 'affine.wgsl', consts: { WG }, dtypes: { T: x.dtype, W: scale.dtype } },
    label: 'affine',
    params: new Params().u32(x.size, c).data(),
    inputs: [x, scale, shift],
    outputs: [out],
    workgroups: rt.grid(x.size, WG),
  });
  return out;
}

/** Copies channels [srcOffset, srcOffset + width) of every row of `src` to [dstOffset, ..) of `dst`. */
function copyChannels(rt: Runtime, src: Tensor, srcOffset: number, dst: Tensor, dstOffset: number, width: number, label: string): void {
  const rows = src.size / channels(src);
  const lanes = [width, channels(src), srcOffset, channels(dst), dstOffset].every((v) => v % 4 === 0) ? 4 : 1;
  const items = (rows * width) / lanes;
  rt.dispatch({
    kernel: { shader: 'channel_copy.wgsl', flags: lanes === 4 ? ['VEC4'] : [], consts: { WG }, dtypes: { T: src.dtype } },
    label,
    params: new Params()
      .u32(items, width / lanes, channels(src) / lanes, srcOffset / lanes, channels(dst) / lanes, dstOffset / lanes)
      .data(),
    inputs: [src],
    outputs: [dst],
    workgroups: rt.grid(items, WG),
    work: rows * width,
  });
}

/** torch.cat(xs, dim=-1): the channel concat of NHWC tensors (equal leading dimensions and dtype). */
export function concatChannels(rt: Runtime, xs: readonly Tensor[]): Tensor {
  if (xs.length === 0) throw new Error('concatChannels: no tensors given');
  const lead = xs[0].shape.slice(0, -1);
  for (const x of xs) {
    if (x.dtype !== xs[0].dtype || x.shape.length !== xs[0].shape.length || x.shape.slice(0, -1).some((d, i) => d !== lead[i])) {
      throw new Error(`concatChannels: cannot concatenate ${xs.map(String).join(', ')} along the last dimension`);
    }
  }
  const out = rt.empty([...lead, xs.reduce((s, x) => s + channels(x), 0)], xs[0].dtype, 'concat');
  let offset = 0;
  for (const x of xs) {
    copyChannels(rt, x, 0, out, offset, channels(x), 'concat');
    offset += channels(x);
  }
  return out;
}

/** x.chunk(n, dim=-1) for a channel count divisible by n: n new contiguous tensors. */
export function chunkChannels(rt: Runtime, x: Tensor, n: number): Tensor[] {
  const c = channels(x);
  if (!Number.isInteger(n) || n < 1 || c % n !== 0) {
    throw new Error(`chunkChannels: ${c} channels do not split into ${n} equal chunks`);
  }
  const width = c / n;
  return Array.from({ length: n }, (_, k) => {
    const part = rt.empty([...x.shape.slice(0, -1), width], x.dtype, 'chunk');
    copyChannels(rt, x, k * width, part, 0, width, 'chunk');
    return part;
  });
}
