/**
 * 2-D convolution over NHWC activations, as torch.nn.functional.conv2d (plus replication padding).
 *
 * Weights live on the device tap-major, [kH, kW, Cout, Cin/groups]: for every kernel tap a
 * [Cout, Cin/groups] matrix, so a 1×1 kernel is a plain Linear weight and a depthwise kernel is
 * [3, 3, C] with channels contiguous. `prepareConv2dWeight` reorders PyTorch's [Cout, Cin/groups,
 * kH, kW] once at load time.
 *
 * Kernels: 1×1 is `linear` over the tokens (matmul.ts); depthwise 3×3 has its own channel-vectorised
 * kernel; everything else is the implicit GEMM (conv_gemm.ts), in vec4 form when channels per group
 * are multiples of 4 (k2s2, k4s2p1 and dense 3×3 at model sizes) and in scalar form otherwise. Any
 * case can be forced onto the implicit GEMM.
 */
import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import { checkVec4, dispatchConvGemm, vec4Applies, type ConvTile } from './conv_gemm.js';
import { linear } from './matmul.js';

export type PaddingMode = 'zeros' | 'replicate';
export type Conv2dKernel = 'pointwise' | 'depthwise' | 'implicit_gemm_vec4' | 'implicit_gemm';

export interface Conv2dOptions {
  stride?: number | readonly [number, number];
  padding?: number | readonly [number, number];
  groups?: number;
  /** 'replicate' pads by repeating edge pixels (torch ReplicationPad2d, or padding_mode='replicate'). */
  paddingMode?: PaddingMode;
  /** Forces a kernel (tests use it to check every path); by default the fastest that applies. */
  kernel?: Conv2dKernel;
  /** Forces the implicit GEMM's tile size (tests, benchmarks). */
  tile?: ConvTile;
}

const DEPTHWISE = { WG: 64, PX: 4 } as const;

const pair = (v: number | readonly [number, number]): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

/** PyTorch [Cout, Cin/groups, kH, kW] → tap-major [kH, kW, Cout, Cin/groups]. */
export function conv2dWeightToTapMajor(weight: Float32Array, shape: readonly number[]): Float32Array {
  const [cout, cin, kh, kw] = shape;
  if (shape.length !== 4 || weight.length !== cout * cin * kh * kw) {
    throw new Error(`conv2d weight: ${weight.length} values do not fill [${shape.join(', ')}] (Cout, Cin/groups, kH, kW)`);
  }
  return toTapMajor(weight, cout, cin, kh * kw, cin * kh * kw, kh * kw);
}

/**
 * A conv weight → tap-major [taps, Cout, Cin], reading (output channel o, input channel i, tap t) at
 * o·outStride + i·inStride + t: so for conv2d's [Cout, Cin, kH, kW] and conv_transpose2d's [Cin, Cout, kH, kW].
 */
export function toTapMajor(
  weight: Float32Array,
  cout: number,
  cin: number,
  taps: number,
  outStride: number,
  inStride: number,
): Float32Array {
  const out = new Float32Array(weight.length);
  for (let o = 0; o < cout; o++) {
    for (let i = 0; i < cin; i++) {
      for (let t = 0; t < taps; t++) out[(t * cout + o) * cin + i] = weight[o * outStride + i * inStride + t];
    }
  }
  return out;
}

/** Uploads a PyTorch conv2d weight [Cout, Cin/groups, kH, kW] in the tap-major layout `conv2d` reads. */
export function prepareConv2dWeight(
  rt: Runtime,
  weight: Float32Array,
  shape: readonly number[],
  dtype: DType = 'f32',
  label = 'conv2d.weight',
): Tensor {
  const [cout, cin, kh, kw] = shape;
  return rt.upload(conv2dWeightToTapMajor(weight, shape), [kh, kw, cout, cin], dtype, label);
}

interface ConvShape {
  batch: number;
  inH: number;
  inW: number;
  inC: number;
  kh: number;
  kw: number;
  cout: number;
  cinPerGroup: number;
  groups: number;
  stride: [number, number];
  padding: [number, number];
  outH: number;
  outW: number;
}

function resolveShape(x: Tensor, weight: Tensor, bias: Tensor | undefined, opts: Conv2dOptions): ConvShape {
  if (x.shape.length !== 4) throw new Error(`conv2d: expected NHWC input [B, H, W, C], got [${x.shape.join(', ')}]`);
  const [batch, inH, inW, inC] = x.shape;
  const groups = opts.groups ?? 1;
  const [kh, kw, cout, cinPerGroup] = weight.shape;
  if (weight.shape.length !== 4 || cinPerGroup * groups !== inC || cout % groups !== 0) {
    throw new Error(
      `conv2d: weight [${weight.shape.join(', ')}] does not fit ${inC} input channels in ${groups} groups: ` +
        `expected tap-major [kH, kW, Cout, ${inC / groups}] from prepareConv2dWeight`,
    );
  }
  if (bias && (bias.shape.length !== 1 || bias.shape[0] !== cout)) {
    throw new Error(`conv2d: bias [${bias.shape.join(', ')}] does not match ${cout} output channels`);
  }
  if (bias && bias.dtype !== weight.dtype) {
    throw new Error(`conv2d: bias is ${bias.dtype} but weight is ${weight.dtype}`);
  }
  const stride = pair(opts.stride ?? 1);
  const padding = pair(opts.padding ?? 0);
  const outH = Math.floor((inH + 2 * padding[0] - kh) / stride[0]) + 1;
  const outW = Math.floor((inW + 2 * padding[1] - kw) / stride[1]) + 1;
  if (outH < 1 || outW < 1) {
    throw new Error(`conv2d: input ${inH}×${inW} with padding ${padding.join('×')} is smaller than the kernel ${kh}×${kw}`);
  }
  return { batch, inH, inW, inC, kh, kw, cout, cinPerGroup, groups, stride, padding, outH, outW };
}

function depthwiseApplies(s: ConvShape): boolean {
  return (
    s.kh === 3 &&
    s.kw === 3 &&
    s.cinPerGroup === 1 &&
    s.groups === s.cout &&
    s.stride[0] === 1 &&
    s.stride[1] === 1 &&
    s.padding[0] === s.padding[1]
  );
}

function pointwiseApplies(s: ConvShape): boolean {
  const ones = (p: [number, number], v: number) => p[0] === v && p[1] === v;
  return s.kh === 1 && s.kw === 1 && s.groups === 1 && ones(s.stride, 1) && ones(s.padding, 0);
}

function chooseKernel(s: ConvShape, forced: Conv2dKernel | undefined): Conv2dKernel {
  if (forced === 'pointwise' && !pointwiseApplies(s)) {
    throw new Error(
      `conv2d: the pointwise kernel needs a 1×1 kernel, 1 group, stride 1 and no padding; ` +
        `got ${s.kh}×${s.kw}, ${s.groups} groups, stride ${s.stride.join('×')}, padding ${s.padding.join('×')}`,
    );
  }
  if (forced === 'depthwise' && !depthwiseApplies(s)) {
    throw new Error(
      `conv2d: the depthwise kernel needs a 3×3 kernel, groups = channels, stride 1 and equal padding; ` +
        `got ${s.kh}×${s.kw}, ${s.groups} groups of ${s.inC} channels, stride ${s.stride.join('×')}, padding ${s.padding.join('×')}`,
    );
  }
  if (forced === 'implicit_gemm_vec4') checkVec4('conv2d', s.cinPerGroup, s.cout / s.groups);
  if (forced) return forced;
  if (pointwiseApplies(s)) return 'pointwise';
  if (depthwiseApplies(s)) return 'depthwise';
  return vec4Applies(s.cinPerGroup, s.cout / s.groups) ? 'implicit_gemm_vec4' : 'implicit_gemm';
}

/**
 * conv2d over NHWC `x` [B, H, W, Cin] with tap-major `weight` [kH, kW, Cout, Cin/groups] and optional
 * `bias` [Cout] → NHWC [B, OH, OW, Cout] with OH = ⌊(H + 2·pad − kH) / stride⌋ + 1. Accumulates in
 * f32; the output has x's dtype.
 */
export function conv2d(rt: Runtime, x: Tensor, weight: Tensor, bias: Tensor | undefined, opts: Conv2dOptions = {}): Tensor {
  const s = resolveShape(x, weight, bias, opts);
  const kernel = chooseKernel(s, opts.kernel);
  if (kernel === 'pointwise') return linear(rt, x, weight.reshape([s.cout, s.inC]), bias);
  const replicate = opts.paddingMode === 'replicate';
  const out = rt.empty([s.batch, s.outH, s.outW, s.cout], x.dtype, 'conv2d');
  if (kernel === 'depthwise') {
    depthwise(rt, x, weight, bias, out, s.padding[0], replicate);
    return out;
  }
  dispatchConvGemm(rt, {
    label: 'conv2d',
    x,
    weight,
    bias,
    out,
    groups: s.groups,
    cinPerGroup: s.cinPerGroup,
    coutPerGroup: s.cout / s.groups,
    grid: [s.outH, s.outW],
    taps: [s.kh, s.kw],
    inStep: s.stride,
    inOffset: [-s.padding[0], -s.padding[1]],
    tapDir: 1,
    weightTap0: 0,
    weightTapStep: [s.kw, 1],
    outStep: [1, 1],
    outOffset: [0, 0],
    replicate,
    vec4: kernel === 'implicit_gemm_vec4',
    tile: opts.tile,
  });
  return out;
}

function depthwise(rt: Runtime, x: Tensor, weight: Tensor, bias: Tensor | undefined, out: Tensor, pad: number, replicate: boolean): void {
  const [batch, inH, inW, c] = x.shape;
  const [, outH, outW] = out.shape;
  const vec4 = c % 4 === 0;
  const cVecs = vec4 ? c / 4 : c;
  const xBlocks = Math.ceil(outW / DEPTHWISE.PX);
  const items = batch * outH * xBlocks * cVecs;
  const flags = [vec4 && 'VEC4', bias && 'HAS_BIAS', replicate && 'REPLICATE'].filter((f): f is string => !!f);
  rt.dispatch({
    kernel: { shader: 'conv2d_depthwise.wgsl', flags, consts: DEPTHWISE, dtypes: { T: x.dtype, W: weight.dtype } },
    label: 'conv2d.depthwise',
    params: new Params().u32(inH, inW, cVecs, outH, outW, xBlocks, items).i32(pad).data(),
    inputs: bias ? [x, weight, bias] : [x, weight],
    outputs: [out],
    workgroups: rt.grid(items, DEPTHWISE.WG),
  });
}
