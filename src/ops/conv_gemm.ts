/**
 * The implicit-GEMM convolution engine (shaders/conv2d.wgsl) shared by conv2d and conv_transpose2d:
 * each output position of a grid is one GEMM row, gathered from NHWC input through a geometry of
 * kernel taps, against tap-major weights [kH, kW, Cout, Cin/groups]. The geometry fields mirror the
 * shader's Params; its header says what each one means.
 */
import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

/** 16 × 16 threads, 4 × 4 outputs each: 64 × 64 tiles, K in steps of 16. */
const TILE = { WG_M: 16, WG_N: 16, BK: 16 } as const;
const BM = 4 * TILE.WG_M;
const BN = 4 * TILE.WG_N;

type Pair = readonly [number, number];

export interface ConvGemmGeometry {
  label: string;
  x: Tensor;
  weight: Tensor;
  bias: Tensor | undefined;
  out: Tensor;
  groups: number;
  cinPerGroup: number;
  coutPerGroup: number;
  /** Output positions this dispatch computes, per image, as [rows, columns]. */
  grid: Pair;
  /** Taps per output position, as [rows, columns]. */
  taps: Pair;
  inStep: Pair;
  inOffset: Pair;
  /** +1: tap t reads input row origin + t (convolution); -1: origin - t (transposed convolution). */
  tapDir: 1 | -1;
  /** Kernel tap (ky·kW + kx) read by tap (0, 0), and its step per tap row and per tap column. */
  weightTap0: number;
  weightTapStep: Pair;
  outStep: Pair;
  outOffset: Pair;
  replicate: boolean;
  /** One vec4 per load and store; needs Cin/groups and Cout/groups divisible by 4. */
  vec4: boolean;
}

export function vec4Applies(cinPerGroup: number, coutPerGroup: number): boolean {
  return cinPerGroup % 4 === 0 && coutPerGroup % 4 === 0;
}

/** Throws when the vec4 kernel is forced where channels do not allow it. */
export function checkVec4(label: string, cinPerGroup: number, coutPerGroup: number): void {
  if (!vec4Applies(cinPerGroup, coutPerGroup)) {
    throw new Error(
      `${label}: the vec4 kernel needs input and output channels per group divisible by 4, got ${cinPerGroup} and ${coutPerGroup}`,
    );
  }
}

export function dispatchConvGemm(rt: Runtime, g: ConvGemmGeometry): void {
  const [batch, inH, inW, inC] = g.x.shape;
  const [, outH, outW, outC] = g.out.shape;
  const rows = batch * g.grid[0] * g.grid[1];
  if (rows === 0) return;
  const k = g.taps[0] * g.taps[1] * g.cinPerGroup;
  const tiles = Math.ceil(rows / BM) * Math.ceil(g.coutPerGroup / BN);
  const [wx, wy] = rt.grid(tiles, 1);
  const flags = [g.vec4 && 'VEC4', g.bias && 'HAS_BIAS', g.replicate && 'REPLICATE'].filter((f): f is string => !!f);
  const params = new Params()
    .u32(inH, inW, inC, g.cinPerGroup, g.grid[0], g.grid[1], rows, k, g.taps[1], g.inStep[0], g.inStep[1])
    .i32(g.inOffset[0], g.inOffset[1], g.tapDir)
    .u32(g.weightTap0, g.weightTapStep[0], g.weightTapStep[1])
    .u32(outH, outW, outC, g.coutPerGroup, g.outStep[0], g.outStep[1], g.outOffset[0], g.outOffset[1]);
  rt.dispatch({
    kernel: { shader: 'conv2d.wgsl', flags, consts: TILE, dtypes: { T: g.x.dtype, W: g.weight.dtype } },
    label: g.label,
    params: params.data(),
    inputs: g.bias ? [g.x, g.weight, g.bias] : [g.x, g.weight],
    outputs: [g.out],
    workgroups: [wx, wy, g.groups],
    work: rows * g.coutPerGroup * g.groups * k,
  });
}
