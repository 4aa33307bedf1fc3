import { describe, expect, it } from 'vitest';
import { foldBatchNorm } from '../src/ops/batch_norm.js';
import { fmaF32 } from '../src/pipeline/avx_mathfun.js';
import { affine } from '../src/ops/elementwise.js';
import { globalResponseNorm } from '../src/ops/grn.js';
import { groupNorm } from '../src/ops/group_norm.js';
import { layerNorm } from '../src/ops/layer_norm.js';
import { THREADS_PER_ROW } from '../src/ops/row_layout.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { pseudoNormal, readGoldenOp, roundToF16 } from './helpers/golden_ops.js';
import { getRuntime } from './helpers/gpu.js';
import { nchwToNhwc, nhwcToNchw } from './helpers/layout.js';

const F32: Tolerance = { atol: 1e-6, rtol: 1e-5 }; // golden README §2, ops/*
// f16 runs take f16-rounded inputs and parameters and are compared with the f32 golden at the f16
// op tolerance of README §2 (ops/f16_*). Exception: a norm divides by the row's std, so the input
// rounding (up to 2^-11 relative of |x|, not of std) is magnified where |mean| ≫ std:
// layernorm_channels_nchw_offset_* (mean 50, std ~1) land ~2e-2 off; STYLE.md's f16 tolerance for
// norms covers them. Host references computed on the f16 inputs themselves need only F16.
const F16: Tolerance = { atol: 2e-3, rtol: 4e-3 };
const F16_NORM: Tolerance = { atol: 1e-3, rtol: 1e-2 }; // STYLE.md, norms with f16 storage
const DTYPES: DType[] = ['f32', 'f16'];

const tolerance = (dtype: DType, name = '') => (dtype === 'f32' ? F32 : name.includes('_offset_') ? F16_NORM : F16);
const asStored = (values: Float32Array, dtype: DType) => (dtype === 'f32' ? values : roundToF16(values));

// ---- host references (f64, on the values the kernel actually reads) -------------------------

function hostLayerNorm(x: ArrayLike<number>, cols: number, eps: number, weight?: ArrayLike<number>, bias?: ArrayLike<number>): Float64Array {
  const y = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += cols) {
    let mean = 0;
    for (let c = 0; c < cols; c++) mean += x[base + c];
    mean /= cols;
    let variance = 0;
    for (let c = 0; c < cols; c++) variance += (x[base + c] - mean) ** 2;
    const rstd = 1 / Math.sqrt(variance / cols + eps);
    for (let c = 0; c < cols; c++) {
      const v = (x[base + c] - mean) * rstd;
      y[base + c] = weight && bias ? v * weight[c] + bias[c] : v;
    }
  }
  return y;
}

/** NHWC [b, hw, c] group norm with per-channel affine. */
function hostGroupNorm(x: ArrayLike<number>, [b, h, w, c]: number[], groups: number, weight: ArrayLike<number>, bias: ArrayLike<number>, eps: number): Float64Array {
  const y = new Float64Array(x.length);
  const cg = c / groups;
  const hw = h * w;
  for (let n = 0; n < b; n++) {
    for (let g = 0; g < groups; g++) {
      const at = (p: number, k: number) => (n * hw + p) * c + g * cg + k;
      let mean = 0;
      for (let p = 0; p < hw; p++) for (let k = 0; k < cg; k++) mean += x[at(p, k)];
      mean /= hw * cg;
      let variance = 0;
      for (let p = 0; p < hw; p++) for (let k = 0; k < cg; k++) variance += (x[at(p, k)] - mean) ** 2;
      const rstd = 1 / Math.sqrt(variance / (hw * cg) + eps);
      for (let p = 0; p < hw; p++) {
        for (let k = 0; k < cg; k++) y[at(p, k)] = (x[at(p, k)] - mean) * rstd * weight[g * cg + k] + bias[g * cg + k];
      }
    }
  }
  return y;
}

function hostGrn(x: ArrayLike<number>, [b, h, w, c]: number[], gamma: ArrayLike<number>, beta: ArrayLike<number>): Float64Array {
  const y = new Float64Array(x.length);
  const hw = h * w;
  for (let n = 0; n < b; n++) {
    const agg = new Float64Array(c);
    for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) agg[k] += x[(n * hw + p) * c + k] ** 2;
    let mean = 0;
    for (let k = 0; k < c; k++) mean += (agg[k] = Math.sqrt(agg[k])) / c;
    for (let p = 0; p < hw; p++) {
      for (let k = 0; k < c; k++) {
        const i = (n * hw + p) * c + k;
        y[i] = gamma[k] * (x[i] * (agg[k] / (mean + 1e-6))) + beta[k] + x[i];
      }
    }
  }
  return y;
}

// ---- LayerNorm -----------------------------------------------------------------------------

describe('layerNorm against torch (ops/layernorm_*)', () => {
  const channelCases = ['layernorm_channels_nchw_0', 'layernorm_channels_nchw_1', 'layernorm_channels_nchw_offset_0', 'layernorm_channels_nchw_offset_1'];
  for (const name of channelCases) {
    for (const dtype of DTYPES) {
      it(`${name} (WuerstchenLayerNorm over NHWC channels, eps 1e-6) ${dtype}`, async () => {
        const rt = await getRuntime();
        const { tensors, params } = await readGoldenOp(name);
        const x = tensors.get('x')!;
        const [b, c, h, w] = x.shape;
        const input = rt.upload(nchwToNhwc(x.data, x.shape), [b, h, w, c], dtype);
        const out = layerNorm(rt, input, { eps: params.eps as number });
        const got = nhwcToNchw(await rt.read(out), [b, h, w, c]);
        expectClose(got, tensors.get('out')!.data, tolerance(dtype, name), name);
        input.dispose();
        out.dispose();
      });
    }
  }

  const lastDimCases = ['layernorm_lastdim_affine_0', 'layernorm_lastdim_affine_1', 'layernorm_lastdim_noaffine_2'];
  for (const name of lastDimCases) {
    for (const dtype of DTYPES) {
      it(`${name} (nn.LayerNorm over the last dim) ${dtype}`, async () => {
        const rt = await getRuntime();
        const { tensors, params } = await readGoldenOp(name);
        const x = tensors.get('x')!;
        const input = rt.upload(x.data, x.shape, dtype);
        const affineParams = params.elementwise_affine
          ? { weight: rt.upload(tensors.get('weight')!.data, [x.shape[2]], dtype), bias: rt.upload(tensors.get('bias')!.data, [x.shape[2]], dtype) }
          : {};
        const out = layerNorm(rt, input, { ...affineParams, eps: params.eps as number });
        expectClose(await rt.read(out), tensors.get('out')!.data, tolerance(dtype), name);
        for (const t of [input, out, affineParams.weight, affineParams.bias]) t?.dispose();
      });
    }
  }

  for (const tpr of THREADS_PER_ROW) {
    it(`forced tiling of ${tpr} invocations per row matches (layernorm_lastdim_affine_1, C = 40)`, async () => {
      const rt = await getRuntime();
      const { tensors } = await readGoldenOp('layernorm_lastdim_affine_1');
      const x = tensors.get('x')!;
      const input = rt.upload(x.data, x.shape);
      const weight = rt.upload(tensors.get('weight')!.data, [40]);
      const bias = rt.upload(tensors.get('bias')!.data, [40]);
      const out = layerNorm(rt, input, { weight, bias, eps: 1e-5, threadsPerRow: tpr });
      expectClose(await rt.read(out), tensors.get('out')!.data, F32, `TPR ${tpr}`);
      for (const t of [input, weight, bias, out]) t.dispose();
    });
  }

  const largeRows: [string, number, number, number][] = [
    ['Stage C width C = 1536, 37 rows, mean 3', 37, 1536, 3],
    ['C = 2560, 5 rows, mean −20', 5, 2560, -20],
    ['CLIP bigG width C = 1280 with affine, 77 rows', 77, 1280, 0],
  ];
  for (const [what, rows, cols, mean] of largeRows) {
    for (const dtype of DTYPES) {
      it(`${what} against a host reference (${dtype})`, async () => {
        const rt = await getRuntime();
        const x = asStored(pseudoNormal(rows * cols, rows + cols, mean, 1.5), dtype);
        const withAffine = cols === 1280;
        const w = asStored(pseudoNormal(cols, 7, 1, 0.2), dtype);
        const b = asStored(pseudoNormal(cols, 8, 0, 0.2), dtype);
        const input = rt.upload(x, [rows, cols], dtype);
        const weight = withAffine ? rt.upload(w, [cols], dtype) : undefined;
        const bias = withAffine ? rt.upload(b, [cols], dtype) : undefined;
        const out = layerNorm(rt, input, { weight, bias, eps: 1e-6 });
        const expected = hostLayerNorm(x, cols, 1e-6, withAffine ? w : undefined, withAffine ? b : undefined);
        // The reference sees the same f16 inputs: only the output rounding (2^-11 relative) remains.
        expectClose(await rt.read(out), expected, dtype === 'f32' ? F32 : F16, what);
        for (const t of [input, weight, bias, out]) t?.dispose();
      });
    }
  }

  it('rejects a weight without a bias and parameters of the wrong width', async () => {
    const rt = await getRuntime();
    const x = rt.upload(new Float32Array(12), [3, 4]);
    const w4 = rt.upload(new Float32Array(4), [4]);
    const w5 = rt.upload(new Float32Array(5), [5]);
    expect(() => layerNorm(rt, x, { weight: w4, eps: 1e-5 })).toThrow('layerNorm: give both weight and bias, or neither');
    expect(() => layerNorm(rt, x, { weight: w5, bias: w5, eps: 1e-5 })).toThrow(
      'layerNorm: parameter [5] does not match the 4 features of [3, 4]',
    );
    for (const t of [x, w4, w5]) t.dispose();
  });
});

// ---- GroupNorm -----------------------------------------------------------------------------

describe('groupNorm (NHWC) against torch (ops/group_norm_*)', () => {
  for (const name of ['group_norm_0', 'group_norm_1', 'group_norm_2']) {
    for (const dtype of DTYPES) {
      it(`${name} ${dtype}`, async () => {
        const rt = await getRuntime();
        const { tensors, params } = await readGoldenOp(name);
        const x = tensors.get('x')!;
        const [b, c, h, w] = x.shape;
        const input = rt.upload(nchwToNhwc(x.data, x.shape), [b, h, w, c], dtype);
        const weight = rt.upload(tensors.get('weight')!.data, [c], dtype);
        const bias = rt.upload(tensors.get('bias')!.data, [c], dtype);
        const out = groupNorm(rt, input, params.num_groups as number, weight, bias, params.eps as number);
        const got = nhwcToNchw(await rt.read(out), [b, h, w, c]);
        expectClose(got, tensors.get('out')!.data, tolerance(dtype), name);
        for (const t of [input, weight, bias, out]) t.dispose();
      });
    }
  }

  it('a 2×40×40×96 map in 32 groups (more elements per group than invocations) against a host reference', async () => {
    const rt = await getRuntime();
    const shape = [2, 40, 40, 96];
    const x = pseudoNormal(2 * 40 * 40 * 96, 5, 2, 3);
    const w = pseudoNormal(96, 6, 1, 0.3);
    const b = pseudoNormal(96, 7, 0, 0.3);
    const [input, weight, bias] = [rt.upload(x, shape), rt.upload(w, [96]), rt.upload(b, [96])];
    const out = groupNorm(rt, input, 32, weight, bias, 1e-5);
    expectClose(await rt.read(out), hostGroupNorm(x, shape, 32, w, b, 1e-5), F32, 'group norm');
    for (const t of [input, weight, bias, out]) t.dispose();
  });

  it('rejects channels that do not split into the groups', async () => {
    const rt = await getRuntime();
    const x = rt.upload(new Float32Array(2 * 2 * 6), [1, 2, 2, 6]);
    const p = rt.upload(new Float32Array(6), [6]);
    expect(() => groupNorm(rt, x, 4, p, p, 1e-5)).toThrow('groupNorm: 6 channels do not split into 4 groups');
    x.dispose();
    p.dispose();
  });
});

// ---- GlobalResponseNorm --------------------------------------------------------------------

describe('globalResponseNorm (NHWC) against torch (ops/global_response_norm_*)', () => {
  for (const name of ['global_response_norm_0', 'global_response_norm_1']) {
    for (const dtype of DTYPES) {
      it(`${name} ${dtype}`, async () => {
        const rt = await getRuntime();
        const { tensors } = await readGoldenOp(name);
        const x = tensors.get('x')!;
        const input = rt.upload(x.data, x.shape, dtype);
        const gamma = rt.upload(tensors.get('gamma')!.data, tensors.get('gamma')!.shape, dtype);
        const beta = rt.upload(tensors.get('beta')!.data, tensors.get('beta')!.shape, dtype);
        const out = globalResponseNorm(rt, input, gamma, beta);
        expectClose(await rt.read(out), tensors.get('out')!.data, dtype === 'f32' ? F32 : F16, name);
        for (const t of [input, gamma, beta, out]) t.dispose();
      });
    }
  }

  const largeMaps: [string, number[]][] = [
    ['Stage B level-0 size 2×128×128 (64 spatial splits), C = 16', [2, 128, 128, 16]],
    ['45×91 positions (splits not dividing HW), C = 100 (not a multiple of 64)', [1, 45, 91, 100]],
  ];
  for (const [what, shape] of largeMaps) {
    it(`${what} against a host reference`, async () => {
      const rt = await getRuntime();
      const c = shape[3];
      const x = pseudoNormal(shape.reduce((a, d) => a * d, 1), c, 0.3, 1);
      const g = pseudoNormal(c, 3, 0.5, 0.5);
      const b = pseudoNormal(c, 4, 0, 0.5);
      const [input, gamma, beta] = [rt.upload(x, shape), rt.upload(g, [1, 1, 1, c]), rt.upload(b, [1, 1, 1, c])];
      const out = globalResponseNorm(rt, input, gamma, beta);
      expectClose(await rt.read(out), hostGrn(x, shape, g, b), F32, what);
      for (const t of [input, gamma, beta, out]) t.dispose();
    });
  }
});

// ---- BatchNorm (inference) -----------------------------------------------------------------

describe('inference BatchNorm folded into affine', () => {
  for (const dtype of DTYPES) {
    it(`PaellaVQModel encoder BatchNorm2d (io/vqgan act.down_blocks.3.1) ${dtype}`, async () => {
      const rt = await getRuntime();
      const { tensors } = await readGoldenOp('batch_norm_vqgan');
      const x = tensors.get('x')!;
      const [b, c, h, w] = x.shape;
      const folded = foldBatchNorm({
        weight: tensors.get('weight')!.data,
        bias: tensors.get('bias')!.data,
        runningMean: tensors.get('running_mean')!.data,
        runningVar: tensors.get('running_var')!.data,
      });
      const input = rt.upload(nchwToNhwc(x.data, x.shape), [b, h, w, c], dtype);
      const [scale, shift] = [rt.upload(folded.scale, [c]), rt.upload(folded.shift, [c])];
      const out = affine(rt, input, scale, shift);
      // Bit-exact where the device fuses WGSL's fma (llvmpipe may not), hence the ops/* tolerance.
      const got = nhwcToNchw(await rt.read(out), [b, h, w, c]);
      expectClose(got, tensors.get('out')!.data, dtype === 'f32' ? F32 : F16, 'batch norm');
      for (const t of [input, scale, shift, out]) t.dispose();
    });
  }

  it('folds as torch does: the host x·scale + shift with one rounding equals torch bit for bit', async () => {
    const { tensors } = await readGoldenOp('batch_norm_vqgan');
    const x = tensors.get('x')!;
    const [, c, h, w] = x.shape;
    const { scale, shift } = foldBatchNorm({
      weight: tensors.get('weight')!.data,
      bias: tensors.get('bias')!.data,
      runningMean: tensors.get('running_mean')!.data,
      runningVar: tensors.get('running_var')!.data,
    });
    const y = x.data.map((v, i) => fmaF32(v, scale[Math.floor(i / (h * w)) % c], shift[Math.floor(i / (h * w)) % c]));
    expect(Array.from(y)).toEqual(Array.from(tensors.get('out')!.data));
  });

  it('rejects parameters of different lengths', () => {
    const four = new Float32Array(4);
    expect(() => foldBatchNorm({ weight: four, bias: four, runningMean: new Float32Array(3), runningVar: four })).toThrow(
      'foldBatchNorm: weight 4, bias 4, running_mean 3 and running_var 4 values differ',
    );
  });
});
