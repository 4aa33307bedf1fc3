import { beforeAll, describe, expect, it } from 'vitest';
import { priorOutput } from '../src/ops/prior_output.js';
import { timestepModulate } from '../src/ops/timestep_modulate.js';
import type { Runtime } from '../src/runtime/device.js';
import { expectClose } from './helpers/compare.js';
import { pseudoNormal, roundToF16 } from './helpers/golden_ops.js';
import { getRuntime } from './helpers/gpu.js';

// The two pointwise kernels only Würstchen's TimestepBlock and WuerstchenPrior use, against a host
// reference written like the PyTorch expressions (f32 roundings via Math.fround). They are also
// covered end to end by test/model_prior.test.ts (act.blocks.1.out, out).
const F32 = { atol: 1e-6, rtol: 1e-6 };
// f16 storage: the result is rounded to f16 once (≤ 1 ulp of the f16-rounded reference).
const F16 = { atol: 2e-3, rtol: 4e-3 };

/** x · (1 + a) + b with a, b = ab.chunk(2, dim=1), broadcast over NHWC positions. */
function modulateReference(x: Float32Array, shape: number[], ab: Float32Array): Float32Array {
  const [, h, w, c] = shape;
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const b = Math.floor(i / (h * w * c));
    const ch = i % c;
    const scaled = Math.fround(x[i] * Math.fround(1 + ab[b * 2 * c + ch]));
    out[i] = Math.fround(scaled + ab[b * 2 * c + c + ch]);
  }
  return out;
}

/** (x_in − a) / (|1 − b| + 1e-5) with a, b = head.chunk(2) over NHWC channels; x_in and the result NCHW. */
function priorOutputReference(xIn: Float32Array, shape: number[], head: Float32Array): Float32Array {
  const [batch, c, h, w] = shape;
  const out = new Float32Array(xIn.length);
  for (let n = 0; n < batch; n++)
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < h * w; p++) {
        const row = (n * h * w + p) * 2 * c;
        const i = (n * c + ch) * h * w + p;
        const denominator = Math.fround(Math.abs(Math.fround(1 - head[row + c + ch])) + Math.fround(1e-5));
        out[i] = Math.fround(Math.fround(xIn[i] - head[row + ch]) / denominator);
      }
  return out;
}

let rt: Runtime;
beforeAll(async () => {
  rt = await getRuntime();
});

describe('timestepModulate', () => {
  for (const [dtype, shape] of [
    ['f32', [2, 3, 5, 7]],
    ['f32', [1, 24, 24, 20]],
    ['f16', [2, 6, 10, 64]],
  ] as const) {
    it(`${dtype} x [${shape.join(', ')}]`, async () => {
      const [batch, , , c] = shape;
      const round = dtype === 'f16' ? roundToF16 : (v: Float32Array) => v;
      const x = round(pseudoNormal(shape.reduce((a: number, b: number) => a * b, 1), 11, 0, 2));
      const ab = round(pseudoNormal(batch * 2 * c, 12, 0, 0.5));
      const xT = rt.upload(x, shape, dtype);
      const abT = rt.upload(ab, [batch, 2 * c], dtype);
      const out = timestepModulate(rt, xT, abT);
      expectClose(await rt.read(out), modulateReference(x, [...shape], ab), dtype === 'f16' ? F16 : F32, 'timestepModulate');
      for (const t of [xT, abT, out]) t.dispose();
    });
  }

  it('rejects a mapper output of the wrong width', () => {
    const x = rt.empty([2, 3, 5, 8], 'f32');
    const ab = rt.empty([2, 8], 'f32');
    expect(() => timestepModulate(rt, x, ab)).toThrow('timestepModulate: ab [2, 8] must be [2, 16] for x [2, 3, 5, 8]');
    x.dispose();
    ab.dispose();
  });
});

describe('priorOutput', () => {
  for (const [xDType, headDType, shape] of [
    ['f32', 'f32', [2, 16, 3, 5]],
    ['f32', 'f32', [1, 4, 24, 24]],
    ['f32', 'f16', [2, 16, 6, 10]],
    ['f16', 'f16', [2, 16, 3, 5]],
  ] as const) {
    it(`x_in ${xDType}, head ${headDType}: [${shape.join(', ')}] → f32`, async () => {
      const [batch, c, h, w] = shape;
      const x = (xDType === 'f16' ? roundToF16 : (v: Float32Array) => v)(pseudoNormal(batch * c * h * w, 21, 0, 1));
      const head = (headDType === 'f16' ? roundToF16 : (v: Float32Array) => v)(pseudoNormal(batch * h * w * 2 * c, 22, 0, 0.3));
      const xT = rt.upload(x, shape, xDType);
      const headT = rt.upload(head, [batch, h, w, 2 * c], headDType);
      const out = priorOutput(rt, xT, headT);
      expect(out.dtype).toBe('f32');
      expect(out.shape).toEqual(shape);
      // Inputs are exact in either storage type, and the result is stored in f32.
      expectClose(await rt.read(out), priorOutputReference(x, [...shape], head), F32, 'priorOutput');
      for (const t of [xT, headT, out]) t.dispose();
    });
  }

  it('rejects a head that does not match x_in', () => {
    const x = rt.empty([2, 16, 3, 5], 'f32');
    const head = rt.empty([2, 3, 5, 16], 'f32');
    expect(() => priorOutput(rt, x, head)).toThrow('priorOutput: head [2, 3, 5, 16] must be [2, 3, 5, 32] for x_in [2, 16, 3, 5]');
    x.dispose();
    head.dispose();
  });
});
