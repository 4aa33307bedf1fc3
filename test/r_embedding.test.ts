import { describe, expect, it } from 'vitest';
import { genREmbedding } from '../src/models/common/r_embedding.js';
import { expectClose } from './helpers/compare.js';
import { readGoldenOp } from './helpers/golden_ops.js';

describe('genREmbedding (host, f32 as torch)', () => {
  it('matches WuerstchenPrior.gen_r_embedding (ops/r_embedding_0, c_r 64) within the strict r_embedding tolerance', async () => {
    const { tensors, params } = await readGoldenOp('r_embedding_0');
    const out = genREmbedding(tensors.get('r')!.data, params.c_r as number, params.max_positions as number);
    const expected = tensors.get('out')!.data;
    // README §2, ops/r_embedding*: atol 1e-6, rtol 1e-5. A frequency one ulp off would miss it by
    // ~5e-4; what remains is SLEEF's sin/cos rounding, one f32 ulp at most.
    expectClose(out, expected, { atol: 1e-6, rtol: 1e-5 }, 'r embedding');
    out.forEach((v, i) => expect(Math.abs(v - expected[i]), `element ${i}`).toBeLessThanOrEqual(2 ** -24));
  });

  it('pads an odd c_r with one zero column, as diffusers does', () => {
    const odd = genREmbedding(Float32Array.of(0.25, 0.7), 65);
    const even = genREmbedding(Float32Array.of(0.25, 0.7), 64);
    for (let b = 0; b < 2; b++) {
      expect(Array.from(odd.subarray(b * 65, b * 65 + 64))).toEqual(Array.from(even.subarray(b * 64, b * 64 + 64)));
      expect(odd[b * 65 + 64]).toBe(0);
    }
  });

  it('rejects a c_r too small for the frequency spacing', () => {
    expect(() => genREmbedding(Float32Array.of(0.5), 3)).toThrow('genREmbedding: c_r must be an integer ≥ 4, got 3');
  });
});
