import { describe, expect, it } from 'vitest';
import { activation, type Activation } from '../src/ops/activation.js';
import { THREADS_PER_ROW } from '../src/ops/row_layout.js';
import { softmax } from '../src/ops/softmax.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { pseudoNormal, readGoldenOp, roundToF16 } from './helpers/golden_ops.js';
import { getRuntime } from './helpers/gpu.js';

const F32: Tolerance = { atol: 1e-6, rtol: 1e-5 }; // golden README §2, ops/*
// f16 storage: inputs rounded to f16, compared with the f32 golden (README §2, ops/f16_*).
const F16: Tolerance = { atol: 2e-3, rtol: 4e-3 };
const DTYPES: DType[] = ['f32', 'f16'];

const ACTIVATION_CASES: [string, Activation][] = [
  ['act_gelu_erf', 'gelu'],
  ['act_gelu_transformers_act2fn', 'gelu'],
  ['act_gelu_tanh', 'gelu_tanh'],
  ['act_quick_gelu', 'quick_gelu'],
  ['act_silu', 'silu'],
  ['act_leaky_relu_0.2', 'leaky_relu'],
  ['act_sigmoid', 'sigmoid'],
];

describe('activation against torch (ops/act_*)', () => {
  for (const [name, kind] of ACTIVATION_CASES) {
    for (const dtype of DTYPES) {
      it(`${name} as '${kind}' ${dtype}`, async () => {
        const rt = await getRuntime();
        const { tensors } = await readGoldenOp(name);
        const x = tensors.get('x')!;
        const input = rt.upload(x.data, x.shape, dtype);
        const out = activation(rt, input, kind);
        expectClose(await rt.read(out), tensors.get('out')!.data, dtype === 'f32' ? F32 : F16, name);
        input.dispose();
        out.dispose();
      });
    }
  }

  it('erf GELU is within 8 f32 ulp of the exact value on [-6, 6] (1e-7 absolute where it is tiny)', async () => {
    const rt = await getRuntime();
    const x = Float32Array.from({ length: 12001 }, (_, i) => Math.fround(-6 + i / 1000));
    const input = rt.upload(x, [x.length]);
    const out = activation(rt, input, 'gelu');
    const got = await rt.read(out);
    const worst = Math.max(
      ...Array.from(x, (v, i) => {
        const exact = 0.5 * v * (1 + erfF64(v / Math.SQRT2));
        return Math.abs(got[i] - exact) / Math.max(8 * Math.abs(exact) * 2 ** -23, 1e-7);
      }),
    );
    expect(worst).toBeLessThanOrEqual(1);
    input.dispose();
    out.dispose();
  });
});

/** erf in f64 by its Maclaurin series; for |x| ≤ 4.3 the cancellation costs < 1e-9 absolute. */
function erfF64(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (-x * x) / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-18 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

function hostSoftmax(x: ArrayLike<number>, cols: number): Float64Array {
  const y = new Float64Array(x.length);
  for (let base = 0; base < x.length; base += cols) {
    let m = -Infinity;
    for (let c = 0; c < cols; c++) m = Math.max(m, x[base + c]);
    let sum = 0;
    for (let c = 0; c < cols; c++) sum += Math.exp(x[base + c] - m);
    for (let c = 0; c < cols; c++) y[base + c] = Math.exp(x[base + c] - m) / sum;
  }
  return y;
}

describe('softmax over the last dim against torch (ops/softmax_*)', () => {
  for (const name of ['softmax_0', 'softmax_1']) {
    for (const dtype of DTYPES) {
      it(`${name} ${dtype}`, async () => {
        const rt = await getRuntime();
        const { tensors } = await readGoldenOp(name);
        const x = tensors.get('x')!;
        const input = rt.upload(x.data, x.shape, dtype);
        const out = softmax(rt, input);
        // Rows hold logits near 125–270 and offset by −1000, where f16 input rounding alone (ulp 0.5
        // at 1000) moves the result by ~1e-1: f16 is judged against the exact softmax of the f16 inputs.
        const expected = dtype === 'f32' ? tensors.get('out')!.data : hostSoftmax(roundToF16(x.data), x.shape[x.shape.length - 1]);
        expectClose(await rt.read(out), expected, dtype === 'f32' ? F32 : F16, name);
        input.dispose();
        out.dispose();
      });
    }
  }

  for (const tpr of THREADS_PER_ROW) {
    it(`forced tiling of ${tpr} invocations per row matches (softmax_1, 77 columns)`, async () => {
      const rt = await getRuntime();
      const { tensors } = await readGoldenOp('softmax_1');
      const x = tensors.get('x')!;
      const input = rt.upload(x.data, x.shape);
      const out = softmax(rt, input, { threadsPerRow: tpr });
      expectClose(await rt.read(out), tensors.get('out')!.data, F32, `TPR ${tpr}`);
      input.dispose();
      out.dispose();
    });
  }

  it('rows of 2560 with −inf (masked) entries against a host reference', async () => {
    const rt = await getRuntime();
    const [rows, cols] = [6, 2560];
    const x = pseudoNormal(rows * cols, 11, 0, 4);
    for (let i = 0; i < x.length; i += 7) x[i] = -Infinity;
    const input = rt.upload(x, [rows, cols]);
    const out = softmax(rt, input);
    const got = await rt.read(out);
    expectClose(got, hostSoftmax(x, cols), F32, 'softmax 2560');
    expect(got[0]).toBe(0);
    input.dispose();
    out.dispose();
  });

  it('f16 rows of 653 keys (Stage C text + image tokens) against a host reference on the f16 inputs', async () => {
    const rt = await getRuntime();
    const [rows, cols] = [24, 653];
    const x = roundToF16(pseudoNormal(rows * cols, 12, 1, 3));
    const input = rt.upload(x, [rows, cols], 'f16');
    const out = softmax(rt, input);
    expectClose(await rt.read(out), hostSoftmax(x, cols), F16, 'softmax f16');
    input.dispose();
    out.dispose();
  });
});
