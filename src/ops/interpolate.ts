/**
 * `F.interpolate(x, size, mode='bicubic', antialias=True, align_corners=True)` on NHWC feature
 * maps (Stage B's effnet injection). torch resizes separably, width first, then height, through
 * an f32 intermediate; the per-axis filter tables come from the host (interpolate_weights.ts)
 * and each pass is one dispatch of shaders/interpolate.wgsl.
 */
import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import { bicubicAntialiasTaps } from './interpolate_weights.js';

const WG = 256;

interface AxisPass {
  /** The source viewed as [outer, inLen, inner]; the axis being resized is the middle one. */
  outer: number;
  inLen: number;
  inner: number;
  outLen: number;
  outShape: number[];
  dtype: DType;
}

function resizeAxis(rt: Runtime, src: Tensor, pass: AxisPass, label: string): Tensor {
  const { taps, table } = bicubicAntialiasTaps(pass.inLen, pass.outLen);
  const weights = rt.upload(table, [table.length], 'f32', `${label}.taps`);
  const dst = rt.empty(pass.outShape, pass.dtype, label);
  rt.dispatch({
    kernel: { shader: 'interpolate.wgsl', consts: { WG }, dtypes: { S: src.dtype, D: dst.dtype } },
    label,
    params: new Params().u32(dst.size, pass.inLen, pass.outLen, pass.inner, taps + 2).data(),
    inputs: [weights, src],
    outputs: [dst],
    workgroups: rt.grid(dst.size, WG),
    work: dst.size * taps,
  });
  weights.dispose();
  return dst;
}

/** Resizes NHWC `x` [B, H, W, C] to [B, outH, outW, C]. */
export function interpolateBicubicAA(rt: Runtime, x: Tensor, outH: number, outW: number): Tensor {
  if (x.shape.length !== 4) {
    throw new Error(`interpolateBicubicAA: expected an NHWC tensor [B, H, W, C], got [${x.shape.join(', ')}]`);
  }
  if (!(Number.isInteger(outH) && Number.isInteger(outW) && outH > 0 && outW > 0)) {
    throw new Error(`interpolateBicubicAA: output size must be positive integers, got ${outH}×${outW}`);
  }
  const [b, h, w, c] = x.shape;
  // An unchanged axis has weights 1 at its own sample and 0 elsewhere, an exact copy, so its
  // pass is skipped; with both unchanged the width pass still runs to return a new tensor.
  const resizeH = outH !== h;
  const resizeW = outW !== w || !resizeH;
  const widthPass = (dtype: DType): AxisPass => ({ outer: b * h, inLen: w, inner: c, outLen: outW, outShape: [b, h, outW, c], dtype });
  const heightPass = (width: number): AxisPass => ({ outer: b, inLen: h, inner: width * c, outLen: outH, outShape: [b, outH, width, c], dtype: x.dtype });
  if (!resizeH) return resizeAxis(rt, x, widthPass(x.dtype), 'interpolate.width');
  if (!resizeW) return resizeAxis(rt, x, heightPass(w), 'interpolate.height');
  const wide = resizeAxis(rt, x, widthPass('f32'), 'interpolate.width');
  const out = resizeAxis(rt, wide, heightPass(outW), 'interpolate.height');
  wide.dispose();
  return out;
}
