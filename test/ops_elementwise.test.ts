import { describe, expect, it } from 'vitest';
import { addScaled, affine, binary, chunkChannels, concatChannels, lerp, type BinaryOp } from '../src/ops/elementwise.js';
import { fmaF32 } from '../src/pipeline/avx_mathfun.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose } from './helpers/compare.js';
import { readGoldenOp, roundToF16 } from './helpers/golden_ops.js';
import { getRuntime } from './helpers/gpu.js';

const DTYPES: DType[] = ['f32', 'f16'];
const range = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => (i - Math.floor(n / 3)) * scale);

describe('lerp (classifier-free guidance)', () => {
  it("matches torch.lerp(uncond, text, 2.5) of the e2e decoder run (bit-exact where WGSL's fma is fused)", async () => {
    const rt = await getRuntime();
    const { tensors } = await readGoldenOp('lerp_cfg_e2e');
    const modelOut = tensors.get('model_out')!;
    const half = modelOut.data.length / 2;
    const [b, ...rest] = modelOut.shape;
    const text = rt.upload(modelOut.data.subarray(0, half), [b / 2, ...rest]);
    const uncond = rt.upload(modelOut.data.subarray(half), [b / 2, ...rest]);
    const out = lerp(rt, uncond, text, 2.5);
    const got = await rt.read(out);
    const expected = tensors.get('guided_model_output')!.data;
    // Two rounding steps instead of one (where the device does not fuse) cost at most an ulp of the
    // product term: 2^-22 of the largest value bounds it, far inside ops/* (atol 1e-6, rtol 1e-5).
    expectClose(got, expected, { atol: 0, rtol: 2 ** -22 }, 'guided output');
    for (const t of [text, uncond, out]) t.dispose();
  });

  it('host form b − (1 − w)·(b − a) with one rounding is torch bit for bit (|w| ≥ 0.5 branch)', async () => {
    const { tensors } = await readGoldenOp('lerp_cfg_e2e');
    const mo = tensors.get('model_out')!.data;
    const half = mo.length / 2;
    const y = Array.from({ length: half }, (_, i) => fmaF32(1.5, Math.fround(mo[i] - mo[half + i]), mo[i]));
    expect(y).toEqual(Array.from(tensors.get('guided_model_output')!.data));
  });

  for (const dtype of DTYPES) {
    it(`takes the a + w·(b − a) branch for |w| < 0.5 and is exact on dyadic inputs (${dtype})`, async () => {
      const rt = await getRuntime();
      const a = range(1001, 0.25);
      const b = range(1001, -0.5).map((v) => v + 3);
      const [ta, tb] = [rt.upload(a, [1001], dtype), rt.upload(b, [1001], dtype)];
      const small = lerp(rt, ta, tb, 0.25);
      const large = lerp(rt, ta, tb, -1.5);
      const [s, l] = await rt.readMany([small, large]);
      const round = dtype === 'f16' ? roundToF16 : (v: Float32Array) => v;
      expect(Array.from(s)).toEqual(Array.from(round(a.map((v, i) => v + 0.25 * (b[i] - v)))));
      expect(Array.from(l)).toEqual(Array.from(round(a.map((v, i) => v - 1.5 * (b[i] - v)))));
      for (const t of [ta, tb, small, large]) t.dispose();
    });
  }

  it('rejects inputs of different sizes', async () => {
    const rt = await getRuntime();
    const [a, b] = [rt.upload([1, 2], [2]), rt.upload([1], [1])];
    expect(() => lerp(rt, a, b, 2)).toThrow('lerp: shapes [2] and [1] differ');
    a.dispose();
    b.dispose();
  });
});

describe('add / mul / sub, with a trailing-block broadcast, exact on dyadic values', () => {
  const host: Record<BinaryOp, (x: number, y: number) => number> = { add: (x, y) => x + y, mul: (x, y) => x * y, sub: (x, y) => x - y };
  // [2, 3, 8] against itself and a per-channel [8] (4 elements per invocation); [3, 5, 7] against
  // [7] and [5, 7] (one per invocation).
  const cases = [
    { shape: [2, 3, 8], bShape: [2, 3, 8] },
    { shape: [2, 3, 8], bShape: [8] },
    { shape: [3, 5, 7], bShape: [7] },
    { shape: [3, 5, 7], bShape: [5, 7] },
    { shape: [3, 5, 7], bShape: [3, 5, 7] },
  ];
  for (const op of ['add', 'mul', 'sub'] as const) {
    for (const { shape, bShape } of cases) {
      it(`${op} [${shape.join(', ')}] with [${bShape.join(', ')}]`, async () => {
        const rt = await getRuntime();
        const n = shape.reduce((p, d) => p * d, 1);
        const period = bShape.reduce((p, d) => p * d, 1);
        const [x, y] = [range(n, 0.25), range(period, 0.5).map((v) => v + 0.125)];
        const [a, b] = [rt.upload(x, shape), rt.upload(y, bShape)];
        const out = binary(rt, op, a, b);
        expect(out.shape).toEqual(shape);
        expect(Array.from(await rt.read(out))).toEqual(Array.from(x, (v, i) => host[op](v, y[i % period])));
        for (const t of [a, b, out]) t.dispose();
      });
    }
  }
});

describe('addScaled a + b·w (the VQGAN blocks\' gamma-weighted branches)', () => {
  for (const dtype of DTYPES) {
    for (const n of [24, 21]) {
      it(`${n} elements (${n % 4 ? 'one' : 'four'} per invocation), exact on dyadic values (${dtype})`, async () => {
        const rt = await getRuntime();
        const [x, y] = [range(n, 0.25), range(n, 0.5)];
        const [a, b] = [rt.upload(x, [n], dtype), rt.upload(y, [n], dtype)];
        const out = addScaled(rt, a, b, -0.375);
        expect(Array.from(await rt.read(out))).toEqual(Array.from(x, (v, i) => v + y[i] * -0.375));
        for (const t of [a, b, out]) t.dispose();
      });
    }
  }

  it('rejects inputs of different sizes', async () => {
    const rt = await getRuntime();
    const [a, b] = [rt.upload([1, 2], [2]), rt.upload([1], [1])];
    expect(() => addScaled(rt, a, b, 2)).toThrow('addScaled: shapes [2] and [1] differ');
    a.dispose();
    b.dispose();
  });
});

describe('affine x·scale[c] + shift[c]', () => {
  for (const dtype of DTYPES) {
    it(`per-channel over NHWC [2, 3, 5, 7], exact on dyadic values (${dtype})`, async () => {
      const rt = await getRuntime();
      const x = range(2 * 3 * 5 * 7, 0.125);
      const scale = Float32Array.from({ length: 7 }, (_, c) => c - 2.5);
      const shift = Float32Array.from({ length: 7 }, (_, c) => c * 0.75);
      const [tx, ts, tt] = [rt.upload(x, [2, 3, 5, 7], dtype), rt.upload(scale, [7]), rt.upload(shift, [7])];
      const out = affine(rt, tx, ts, tt);
      expect(out.shape).toEqual([2, 3, 5, 7]);
      expect(Array.from(await rt.read(out))).toEqual(Array.from(x, (v, i) => v * scale[i % 7] + shift[i % 7]));
      for (const t of [tx, ts, tt, out]) t.dispose();
    });
  }

  it('rejects a scale that is not one value per channel', async () => {
    const rt = await getRuntime();
    const [x, s] = [rt.upload(new Float32Array(12), [3, 4]), rt.upload(new Float32Array(3), [3])];
    expect(() => affine(rt, x, s, s)).toThrow('affine: scale [3] and shift [3] must hold one value per channel (4)');
    x.dispose();
    s.dispose();
  });
});

describe('concatChannels / chunkChannels (NHWC, last dim)', () => {
  for (const dtype of DTYPES) {
    it(`concat of widths 3, 8, 1 then chunk back, exact (${dtype})`, async () => {
      const rt = await getRuntime();
      const lead = [2, 5, 3];
      const rows = 30;
      const parts = [3, 8, 1].map((w, k) => Float32Array.from({ length: rows * w }, (_, i) => k * 1000 + i));
      const inputs = parts.map((p, k) => rt.upload(p, [...lead, [3, 8, 1][k]], dtype));
      const cat = concatChannels(rt, inputs);
      expect(cat.shape).toEqual([...lead, 12]);
      const got = await rt.read(cat);
      const expected = new Float32Array(rows * 12);
      for (let r = 0; r < rows; r++) {
        expected.set(parts[0].subarray(r * 3, r * 3 + 3), r * 12);
        expected.set(parts[1].subarray(r * 8, r * 8 + 8), r * 12 + 3);
        expected.set(parts[2].subarray(r, r + 1), r * 12 + 11);
      }
      expect(Array.from(got)).toEqual(Array.from(expected));

      const chunks = chunkChannels(rt, cat, 3);
      expect(chunks.map((c) => c.shape)).toEqual([0, 1, 2].map(() => [...lead, 4]));
      const read = await rt.readMany(chunks);
      read.forEach((chunk, k) => {
        const want = Float32Array.from({ length: rows * 4 }, (_, i) => expected[Math.floor(i / 4) * 12 + k * 4 + (i % 4)]);
        expect(Array.from(chunk), `chunk ${k}`).toEqual(Array.from(want));
      });
      for (const t of [...inputs, cat, ...chunks]) t.dispose();
    });
  }

  it('rejects mismatched leading dimensions and uneven chunks', async () => {
    const rt = await getRuntime();
    const [a, b] = [rt.upload(new Float32Array(6), [2, 3]), rt.upload(new Float32Array(6), [3, 2])];
    expect(() => concatChannels(rt, [a, b])).toThrow(
      'concatChannels: cannot concatenate Tensor[2x3 f32], Tensor[3x2 f32] along the last dimension',
    );
    expect(() => chunkChannels(rt, a, 2)).toThrow('chunkChannels: 3 channels do not split into 2 equal chunks');
    a.dispose();
    b.dispose();
  });
});
