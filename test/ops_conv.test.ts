import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { conv2d, prepareConv2dWeight, type Conv2dKernel, type Conv2dOptions } from '../src/ops/conv2d.js';
import { chooseConvTile, type ConvTile } from '../src/ops/conv_gemm.js';
import {
  convTranspose2d,
  prepareConvTranspose2dWeight,
  type ConvTranspose2dOptions,
} from '../src/ops/conv_transpose2d.js';
import { openFileSource } from '../src/platform/file.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import type { Tensor } from '../src/runtime/tensor.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { conv2dReference, convTranspose2dReference, type ConvReferenceOptions } from './helpers/conv_reference.js';
import { getRuntime } from './helpers/gpu.js';
import { nchwToNhwc, nhwcToNchw } from './helpers/layout.js';

// ../shared/golden/README.md §2: ops/* and ops/f16_* (f16 storage, inputs rounded to f16).
const F32: Tolerance = { atol: 1e-6, rtol: 1e-5 };
const F16: Tolerance = { atol: 2e-3, rtol: 4e-3 };

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/ops/${name}.safetensors`, import.meta.url));

interface Golden {
  x: Float32Array;
  xShape: number[];
  weight: Float32Array;
  weightShape: number[];
  bias: Float32Array | undefined;
  out: Float32Array;
  outShape: number[];
}

async function readGolden(name: string): Promise<Golden> {
  const file = await SafetensorsFile.open(await openFileSource(fixture(name)));
  const shape = (t: string) => [...file.tensors.get(t)!.shape];
  try {
    return {
      x: await file.readF32('x'),
      xShape: shape('x'),
      weight: await file.readF32('weight'),
      weightShape: shape('weight'),
      bias: file.tensors.has('bias') ? await file.readF32('bias') : undefined,
      out: await file.readF32('out'),
      outShape: shape('out'),
    };
  } finally {
    await file.close();
  }
}

const toNhwcShape = ([b, c, h, w]: number[]) => [b, h, w, c];

let rt: Runtime;
beforeAll(async () => {
  rt = await getRuntime();
});

/** Runs an NHWC op on a golden's NCHW input and compares its output, converted back, with `out`. */
async function checkGolden(
  name: string,
  dtypes: { x: DType; weight: DType },
  tol: Tolerance,
  run: (x: Tensor, g: Golden) => { out: Tensor; params: Tensor[] },
): Promise<void> {
  const g = await readGolden(name);
  const xShape = toNhwcShape(g.xShape);
  const x = rt.upload(nchwToNhwc(g.x, g.xShape), xShape, dtypes.x);
  const { out, params } = run(x, g);
  expect(out.shape).toEqual(toNhwcShape(g.outShape));
  expect(out.dtype).toBe(rt.storageDType(dtypes.x));
  const got = nhwcToNchw(await rt.read(out), out.shape);
  expectClose(got, g.out, tol, name);
  for (const t of [x, out, ...params]) t.dispose();
}

function runConv2d(name: string, opts: Conv2dOptions, dtypes: { x: DType; weight: DType }, tol: Tolerance) {
  return checkGolden(name, dtypes, tol, (x, g) => {
    const weight = prepareConv2dWeight(rt, g.weight, g.weightShape, dtypes.weight);
    const bias = g.bias && rt.upload(g.bias, [g.bias.length], dtypes.weight);
    return { out: conv2d(rt, x, weight, bias, opts), params: bias ? [weight, bias] : [weight] };
  });
}

function runConvTranspose2d(name: string, opts: ConvTranspose2dOptions, dtype: DType, tol: Tolerance) {
  return checkGolden(name, { x: dtype, weight: dtype }, tol, (x, g) => {
    const weight = prepareConvTranspose2dWeight(rt, g.weight, g.weightShape, dtype);
    const bias = rt.upload(g.bias!, [g.bias!.length], dtype);
    return { out: convTranspose2d(rt, x, weight, bias, opts), params: [weight, bias] };
  });
}

const F32_ONLY = { x: 'f32', weight: 'f32' } as const;
const F16_ONLY = { x: 'f16', weight: 'f16' } as const;

// Each golden case with the options of its reference call and the kernels that apply: the one chosen
// by default first, then the others (always including the general scalar implicit GEMM) forced on.
const CONV2D_CASES: { name: string; opts: Conv2dOptions; kernels: Conv2dKernel[] }[] = [
  { name: 'conv2d_1x1_0', opts: {}, kernels: ['pointwise', 'implicit_gemm_vec4', 'implicit_gemm'] },
  { name: 'conv2d_1x1_1', opts: {}, kernels: ['pointwise', 'implicit_gemm_vec4', 'implicit_gemm'] },
  { name: 'conv2d_3x3_p1_0', opts: { padding: 1 }, kernels: ['implicit_gemm_vec4', 'implicit_gemm'] },
  { name: 'conv2d_3x3_p1_1', opts: { padding: 1 }, kernels: ['implicit_gemm'] },
  { name: 'conv2d_depthwise3x3_p1_0', opts: { padding: 1, groups: 16 }, kernels: ['depthwise', 'implicit_gemm'] },
  { name: 'conv2d_depthwise3x3_p1_1', opts: { padding: 1, groups: 64 }, kernels: ['depthwise', 'implicit_gemm'] },
  { name: 'conv2d_k2s2_0', opts: { stride: 2 }, kernels: ['implicit_gemm_vec4', 'implicit_gemm'] },
  { name: 'conv2d_k2s2_1', opts: { stride: 2 }, kernels: ['implicit_gemm_vec4', 'implicit_gemm'] },
  { name: 'conv2d_k4s2p1_0', opts: { stride: 2, padding: 1 }, kernels: ['implicit_gemm_vec4', 'implicit_gemm'] },
  { name: 'conv2d_k4s2p1_1', opts: { stride: 2, padding: 1 }, kernels: ['implicit_gemm_vec4', 'implicit_gemm'] },
  {
    name: 'conv2d_replicationpad_depthwise3x3_0',
    opts: { padding: 1, groups: 12, paddingMode: 'replicate' },
    kernels: ['depthwise', 'implicit_gemm'],
  },
  {
    name: 'conv2d_replicationpad_depthwise3x3_1',
    opts: { padding: 1, groups: 16, paddingMode: 'replicate' },
    kernels: ['depthwise', 'implicit_gemm'],
  },
];

// Every implicit-GEMM case runs with each tile forced (the register tile only where the device's
// subgroups allow it: lavapipe, where it is also the default).
const TILES: ConvTile[] = ['small', 'large', 'tall', 'register'];
const tilesFor = (kernel: string): (ConvTile | undefined)[] => (kernel.startsWith('implicit_gemm') ? TILES : [undefined]);
const tileText = (tile: ConvTile | undefined) => (tile ? `, ${tile} tile` : '');

describe('conv2d against PyTorch goldens (f32: atol 1e-6, rtol 1e-5)', () => {
  for (const { name, opts, kernels } of CONV2D_CASES) {
    for (const kernel of kernels) {
      for (const tile of tilesFor(kernel)) {
        it(`${name} [${kernel}${tileText(tile)}]`, () => runConv2d(name, { ...opts, kernel, tile }, F32_ONLY, F32));
      }
    }
  }
});

describe('conv2d in f16 (f16 storage, f32 accumulation; atol 2e-3, rtol 4e-3 against the f32 result)', () => {
  // Golden f16 cases: inputs stored as f16, `out` computed from them in f32.
  it('f16_conv2d_1x1_0 [pointwise]', () => runConv2d('f16_conv2d_1x1_0', {}, F16_ONLY, F16));
  it('f16_conv2d_1x1_0 [implicit_gemm_vec4]', () =>
    runConv2d('f16_conv2d_1x1_0', { kernel: 'implicit_gemm_vec4' }, F16_ONLY, F16));
  it('f16_conv2d_1x1_0 [implicit_gemm]', () => runConv2d('f16_conv2d_1x1_0', { kernel: 'implicit_gemm' }, F16_ONLY, F16));
  it('f16_conv2d_3x3_0 [implicit_gemm_vec4]', () => runConv2d('f16_conv2d_3x3_0', { padding: 1 }, F16_ONLY, F16));
  it('f16_conv2d_3x3_0 [implicit_gemm]', () =>
    runConv2d('f16_conv2d_3x3_0', { padding: 1, kernel: 'implicit_gemm' }, F16_ONLY, F16));
  it('f16_conv2d_3x3_0 [implicit_gemm_vec4, large tile]', () =>
    runConv2d('f16_conv2d_3x3_0', { padding: 1, tile: 'large' }, F16_ONLY, F16));

  // f32 goldens with inputs rounded to f16 on upload.
  for (const name of [
    'conv2d_depthwise3x3_p1_0',
    'conv2d_depthwise3x3_p1_1',
    'conv2d_replicationpad_depthwise3x3_0',
    'conv2d_replicationpad_depthwise3x3_1',
    'conv2d_k2s2_0',
    'conv2d_k2s2_1',
  ]) {
    const { opts, kernels } = CONV2D_CASES.find((c) => c.name === name)!;
    it(`${name} rounded to f16 [${kernels[0]}]`, () => runConv2d(name, opts, F16_ONLY, F16));
  }

  it('conv2d_k4s2p1_0 with f32 activations and f16 weights [implicit_gemm_vec4]', () =>
    runConv2d('conv2d_k4s2p1_0', { stride: 2, padding: 1 }, { x: 'f32', weight: 'f16' }, F16));
});

const CONV_TRANSPOSE2D_CASES: { name: string; opts: ConvTranspose2dOptions }[] = [
  { name: 'conv_transpose2d_k2s2_0', opts: { stride: 2 } },
  { name: 'conv_transpose2d_k2s2_1', opts: { stride: 2 } },
  { name: 'conv_transpose2d_k4s2p1_0', opts: { stride: 2, padding: 1 } },
  { name: 'conv_transpose2d_k4s2p1_1', opts: { stride: 2, padding: 1 } },
];

describe('conv_transpose2d against PyTorch goldens', () => {
  for (const { name, opts } of CONV_TRANSPOSE2D_CASES) {
    for (const kernel of ['implicit_gemm_vec4', 'implicit_gemm'] as const) {
      for (const tile of tilesFor(kernel)) {
        it(`${name} [${kernel}${tileText(tile)}] (atol 1e-6, rtol 1e-5)`, () =>
          runConvTranspose2d(name, { ...opts, kernel, tile }, 'f32', F32));
      }
    }
  }
  for (const { name, opts } of [CONV_TRANSPOSE2D_CASES[0], CONV_TRANSPOSE2D_CASES[2]]) {
    it(`${name} rounded to f16 [implicit_gemm_vec4] (atol 2e-3, rtol 4e-3)`, () => runConvTranspose2d(name, opts, 'f16', F16));
  }
});

/** Deterministic values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

describe('conv2d against a float64 CPU reference (shapes no golden covers; atol 1e-6, rtol 1e-5)', () => {
  async function check(
    xShape: number[],
    weightShape: number[],
    opts: ConvReferenceOptions,
    kernel: Conv2dKernel,
    tile?: ConvTile,
  ) {
    const x = values(xShape.reduce((a, b) => a * b), 1);
    const w = values(weightShape.reduce((a, b) => a * b), 2);
    const bias = values(weightShape[0], 3);
    const ref = conv2dReference(x, xShape, w, weightShape, bias, opts);
    const xt = rt.upload(x, xShape);
    const wt = prepareConv2dWeight(rt, w, weightShape);
    const bt = rt.upload(bias, [bias.length]);
    const out = conv2d(rt, xt, wt, bt, {
      stride: opts.stride,
      padding: opts.padding,
      groups: opts.groups,
      paddingMode: opts.replicate ? 'replicate' : 'zeros',
      kernel,
      tile,
    });
    expect(out.shape).toEqual(ref.shape);
    expectClose(await rt.read(out), ref.data, F32, kernel);
    for (const t of [xt, wt, bt, out]) t.dispose();
  }

  const pointwise: ConvReferenceOptions = { stride: [1, 1], padding: [0, 0], groups: 1, replicate: false };
  for (const tile of TILES) {
    it(`1×1 over 180 rows × 72 channels, K 20: several row and column tiles, partial K tile [implicit_gemm_vec4, ${tile} tile]`, () =>
      check([2, 9, 10, 20], [72, 20, 1, 1], pointwise, 'implicit_gemm_vec4', tile));
    it(`1×1 over 180 rows × 70 channels, K 19 [implicit_gemm, ${tile} tile]`, () =>
      check([2, 9, 10, 19], [70, 19, 1, 1], pointwise, 'implicit_gemm', tile));
  }
  it('1×1 over 180 rows × 72 channels, K 20 [pointwise]', () => check([2, 9, 10, 20], [72, 20, 1, 1], pointwise, 'pointwise'));
  it('depthwise 3×3 with 6 channels (one channel per thread), batch 3 [depthwise]', () =>
    check([3, 5, 11, 6], [6, 1, 3, 3], { stride: [1, 1], padding: [1, 1], groups: 6, replicate: false }, 'depthwise'));
  it('depthwise 3×3 with 6 channels, replication padding [depthwise]', () =>
    check([1, 4, 9, 6], [6, 1, 3, 3], { stride: [1, 1], padding: [1, 1], groups: 6, replicate: true }, 'depthwise'));
  for (const tile of TILES) {
    it(`3×3, 2 groups, stride 2×1, padding 1×0 [implicit_gemm, ${tile} tile]`, () =>
      check([2, 7, 6, 6], [10, 3, 3, 3], { stride: [2, 1], padding: [1, 0], groups: 2, replicate: false }, 'implicit_gemm', tile));
    it(`3×3, 2 groups of 8 → 4 channels, replication padding [implicit_gemm_vec4, ${tile} tile]`, () =>
      check([1, 5, 6, 16], [8, 8, 3, 3], { stride: [1, 1], padding: [1, 1], groups: 2, replicate: true }, 'implicit_gemm_vec4', tile));
  }
  it('k2 s2 over 70 × 37 positions × 24 → 72 channels: rows past the last register tile, several column tiles [implicit_gemm_vec4, register tile]', () =>
    check([1, 140, 74, 24], [72, 24, 2, 2], { stride: [2, 2], padding: [0, 0], groups: 1, replicate: false }, 'implicit_gemm_vec4', 'register'));
});

describe('conv_transpose2d against a float64 CPU reference (atol 1e-6, rtol 1e-5)', () => {
  it('k3 s2 p1: phases with different tap counts, batch 2 [implicit_gemm]', async () => {
    const [xShape, wShape] = [[2, 4, 5, 5], [5, 6, 3, 3]];
    const x = values(2 * 4 * 5 * 5, 4);
    const w = values(5 * 6 * 9, 5);
    const bias = values(6, 6);
    const ref = convTranspose2dReference(x, xShape, w, wShape, bias, [2, 2], [1, 1]);
    const xt = rt.upload(x, xShape);
    const wt = prepareConvTranspose2dWeight(rt, w, wShape);
    const bt = rt.upload(bias, [6]);
    const out = convTranspose2d(rt, xt, wt, bt, { stride: 2, padding: 1 });
    expect(out.shape).toEqual(ref.shape);
    expectClose(await rt.read(out), ref.data, F32, 'k3s2p1');
    for (const t of [xt, wt, bt, out]) t.dispose();
  });
});

describe('conv tile rule (no GPU)', () => {
  const GPU = { cpuEmulated: false, fixedSubgroupSize: 32 };
  it('on GPUs: tall tiles from K 1536 (VQGAN up-sampler), large below (Stage B samplers), small when tiles are few', () => {
    expect(chooseConvTile(GPU, 4 * 128 * 128, 192, 4 * 384, 1)).toBe('tall');
    expect(chooseConvTile(GPU, 64 * 64, 640, 4 * 320, 1)).toBe('large');
    expect(chooseConvTile(GPU, 4 * 64 * 64, 320, 640, 1)).toBe('large');
    expect(chooseConvTile(GPU, 16 * 16, 1280, 4 * 640, 1)).toBe('small');
  });
  it('on CPU-emulated GPUs with fixed subgroups: the register tile', () => {
    expect(chooseConvTile({ cpuEmulated: true, fixedSubgroupSize: 8 }, 4 * 128 * 128, 192, 4 * 384, 1)).toBe('register');
    expect(chooseConvTile({ cpuEmulated: true, fixedSubgroupSize: null }, 4 * 128 * 128, 192, 4 * 384, 1)).toBe('tall');
  });
});

describe('conv input checks', () => {
  it('rejects a PyTorch-layout weight that was not prepared', () => {
    const x = rt.empty([1, 4, 4, 8], 'f32');
    const w = rt.empty([16, 8, 3, 3], 'f32');
    expect(() => conv2d(rt, x, w, undefined, { padding: 1 })).toThrow(
      'conv2d: weight [16, 8, 3, 3] does not fit 8 input channels in 1 groups: expected tap-major [kH, kW, Cout, 8] from prepareConv2dWeight',
    );
    x.dispose();
    w.dispose();
  });

  it('rejects forcing the depthwise kernel onto a dense convolution', () => {
    const x = rt.empty([1, 4, 4, 8], 'f32');
    const w = rt.empty([3, 3, 8, 8], 'f32');
    expect(() => conv2d(rt, x, w, undefined, { padding: 1, kernel: 'depthwise' })).toThrow(
      'conv2d: the depthwise kernel needs a 3×3 kernel, groups = channels, stride 1 and equal padding; got 3×3, 1 groups of 8 channels, stride 1×1, padding 1×1',
    );
    x.dispose();
    w.dispose();
  });

  it('rejects forcing the pointwise kernel onto a strided 1×1 convolution', () => {
    const x = rt.empty([1, 4, 4, 8], 'f32');
    const w = rt.empty([1, 1, 8, 8], 'f32');
    expect(() => conv2d(rt, x, w, undefined, { stride: 2, kernel: 'pointwise' })).toThrow(
      'conv2d: the pointwise kernel needs a 1×1 kernel, 1 group, stride 1 and no padding; got 1×1, 1 groups, stride 2×2, padding 0×0',
    );
    x.dispose();
    w.dispose();
  });

  it('rejects forcing the vec4 kernel when channels are not multiples of 4', () => {
    const x = rt.empty([1, 4, 4, 3], 'f32');
    const w = rt.empty([3, 3, 8, 3], 'f32');
    expect(() => conv2d(rt, x, w, undefined, { padding: 1, kernel: 'implicit_gemm_vec4' })).toThrow(
      'conv2d: the vec4 kernel needs input and output channels per group divisible by 4, got 3 and 8',
    );
    x.dispose();
    w.dispose();
  });
});
