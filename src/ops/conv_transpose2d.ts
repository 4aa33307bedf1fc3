/**
 * Transposed 2-D convolution over NHWC activations, as torch.nn.functional.conv_transpose2d
 * (groups 1, no output padding, no dilation), in gather form: output pixels of one phase
 * (oy mod s, ox mod s) all use the same kernel taps, so each phase is one implicit GEMM on the shared
 * engine (conv_gemm.ts). k2s2 (DiffNeXt up-sampler) is then a plain GEMM per phase and k4s2p1
 * (Paella decoder) a 2×2-tap GEMM per phase.
 *
 * Weights live on the device tap-major, [kH, kW, Cout, Cin]; `prepareConvTranspose2dWeight` reorders
 * PyTorch's [Cin, Cout, kH, kW] once at load time.
 */
import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import type { Tensor } from '../runtime/tensor.js';
import { checkVec4, dispatchConvGemm, vec4Applies, type ConvTile } from './conv_gemm.js';
import { toTapMajor } from './conv2d.js';

export type ConvTranspose2dKernel = 'implicit_gemm_vec4' | 'implicit_gemm';

export interface ConvTranspose2dOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  /** Forces a kernel (tests use it to check every path); by default vec4 where channels allow. */
  kernel?: ConvTranspose2dKernel;
  /** Forces the implicit GEMM's tile size (tests, benchmarks). */
  tile?: ConvTile;
}

const pair = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** PyTorch [Cin, Cout, kH, kW] → tap-major [kH, kW, Cout, Cin]. */
export function convTranspose2dWeightToTapMajor(weight: Float32Array, shape: readonly number[]): Float32Array {
  const [cin, cout, kh, kw] = shape;
  if (shape.length !== 4 || weight.length !== cin * cout * kh * kw) {
    throw new Error(`conv_transpose2d weight: ${weight.length} values do not fill [${shape.join(', ')}] (Cin, Cout, kH, kW)`);
  }
  return toTapMajor(weight, cout, cin, kh * kw, kh * kw, cout * kh * kw);
}

/** Uploads a PyTorch conv_transpose2d weight [Cin, Cout, kH, kW] in the layout `convTranspose2d` reads. */
export function prepareConvTranspose2dWeight(
  rt: Runtime,
  weight: Float32Array,
  shape: readonly number[],
  dtype: DType = 'f32',
  label = 'conv_transpose2d.weight',
): Tensor {
  const [cin, cout, kh, kw] = shape;
  return rt.upload(convTranspose2dWeightToTapMajor(weight, shape), [kh, kw, cout, cin], dtype, label);
}

/**
 * conv_transpose2d over NHWC `x` [B, H, W, Cin] with tap-major `weight` [kH, kW, Cout, Cin] and optional
 * `bias` [Cout] → NHWC [B, (H − 1)·s − 2·pad + kH, (W − 1)·s − 2·pad + kW, Cout]. Accumulates in f32.
 */
export function convTranspose2d(
  rt: Runtime,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | undefined,
  opts: ConvTranspose2dOptions = {},
): Tensor {
  if (x.shape.length !== 4) throw new Error(`convTranspose2d: expected NHWC input [B, H, W, C], got [${x.shape.join(', ')}]`);
  const [batch, inH, inW, cin] = x.shape;
  const [kh, kw, cout, wCin] = weight.shape;
  if (weight.shape.length !== 4 || wCin !== cin) {
    throw new Error(
      `convTranspose2d: weight [${weight.shape.join(', ')}] does not fit ${cin} input channels: ` +
        `expected tap-major [kH, kW, Cout, ${cin}] from prepareConvTranspose2dWeight`,
    );
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== cout)) {
    throw new Error(`convTranspose2d: bias [${bias.shape.join(', ')}] does not match ${cout} output channels`);
  }
  if (bias && bias.dtype !== weight.dtype) {
    throw new Error(`convTranspose2d: bias is ${bias.dtype} but weight is ${weight.dtype}`);
  }
  const stride = pair(opts.stride ?? 1);
  const padding = pair(opts.padding ?? 0);
  const outH = (inH - 1) * stride[0] - 2 * padding[0] + kh;
  const outW = (inW - 1) * stride[1] - 2 * padding[1] + kw;
  if (outH < 1 || outW < 1) {
    throw new Error(`convTranspose2d: padding ${padding.join('×')} leaves no output for input ${inH}×${inW} and kernel ${kh}×${kw}`);
  }
  if (opts.kernel === 'implicit_gemm_vec4') checkVec4('convTranspose2d', cin, cout);
  const vec4 = (opts.kernel ?? (vec4Applies(cin, cout) ? 'implicit_gemm_vec4' : 'implicit_gemm')) === 'implicit_gemm_vec4';
  const out = rt.empty([batch, outH, outW, cout], x.dtype, 'conv_transpose2d');
  const y = phases(outH, stride[0], padding[0], kh);
  const xs = phases(outW, stride[1], padding[1], kw);
  for (const py of y) {
    for (const px of xs) {
      dispatchConvGemm(rt, {
        label: 'conv_transpose2d',
        x,
        weight,
        bias,
        out,
        groups: 1,
        cinPerGroup: cin,
        coutPerGroup: cout,
        grid: [py.count, px.count],
        taps: [py.taps, px.taps],
        inStep: [1, 1],
        inOffset: [py.inputOffset, px.inputOffset],
        tapDir: -1,
        weightTap0: py.firstTap * kw + px.firstTap,
        weightTapStep: [stride[0] * kw, stride[1]],
        outStep: stride,
        outOffset: [py.phase, px.phase],
        replicate: false,
        vec4,
        tile: opts.tile,
      });
    }
  }
  return out;
}

interface Phase {
  /** Output coordinates o ≡ phase (mod s). */
  phase: number;
  count: number;
  /** Kernel taps k ≡ phase + pad (mod s): firstTap, firstTap + s, …, `taps` of them. */
  firstTap: number;
  taps: number;
  /** Output s·q + phase reads input q + inputOffset − t through tap firstTap + s·t. */
  inputOffset: number;
}

/** One dimension's phases: o + pad = s·i + k, so o = s·q + phase reads i = q + (phase + pad − k) / s. */
function phases(outSize: number, s: number, pad: number, k: number): Phase[] {
  const result: Phase[] = [];
  for (let phase = 0; phase < Math.min(s, outSize); phase++) {
    const firstTap = (phase + pad) % s;
    result.push({
      phase,
      count: Math.ceil((outSize - phase) / s),
      firstTap,
      taps: Math.max(0, Math.ceil((k - firstTap) / s)),
      inputOffset: (phase + pad - firstTap) / s,
    });
  }
  return result;
}
