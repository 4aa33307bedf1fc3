import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { nchwToNhwc, nhwcToNchw, permute, pixelShuffle, pixelUnshuffle, type Layout } from '../src/ops/shuffle.js';
import { openFileSource } from '../src/platform/file.js';
import type { Runtime } from '../src/runtime/device.js';
import { f16BitsToF32Array, f32ArrayToF16Bits, type DType } from '../src/runtime/dtype.js';
import { getRuntime } from './helpers/gpu.js';
import * as host from './helpers/layout.js';

// Pure data movement: every case must match exactly (stricter than the golden ops/* tolerance),
// in f16 too once the input is rounded to f16 on upload.

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/ops/${name}.safetensors`, import.meta.url));

async function readGolden(name: string) {
  const file = await SafetensorsFile.open(await openFileSource(fixture(name)));
  try {
    return {
      x: await file.readF32('x'),
      xShape: [...file.tensors.get('x')!.shape],
      out: await file.readF32('out'),
      outShape: [...file.tensors.get('out')!.shape],
    };
  } finally {
    await file.close();
  }
}

const toNhwcShape = ([b, c, h, w]: number[]) => [b, h, w, c];
const roundToF16 = (v: Float32Array) => f16BitsToF32Array(f32ArrayToF16Bits(v));

let rt: Runtime;
beforeAll(async () => {
  rt = await getRuntime();
});

const CASES = [
  { name: 'pixel_unshuffle_0', op: pixelUnshuffle },
  { name: 'pixel_unshuffle_1', op: pixelUnshuffle },
  { name: 'pixel_shuffle_0', op: pixelShuffle },
  { name: 'pixel_shuffle_1', op: pixelShuffle },
];

describe('pixel shuffle / unshuffle against PyTorch goldens (factor 2, exact)', () => {
  for (const { name, op } of CASES) {
    for (const layout of ['nhwc', 'nchw'] as Layout[]) {
      for (const dtype of ['f32', 'f16'] as DType[]) {
        it(`${name} ${layout} ${dtype}`, async () => {
          const g = await readGolden(name);
          const [xData, xShape, outShape] =
            layout === 'nchw'
              ? [g.x, g.xShape, g.outShape]
              : [host.nchwToNhwc(g.x, g.xShape), toNhwcShape(g.xShape), toNhwcShape(g.outShape)];
          const x = rt.upload(xData, xShape, dtype);
          const out = op(rt, x, 2, { layout });
          expect(out.shape).toEqual(outShape);
          expect(out.dtype).toBe(x.dtype);
          const got = await rt.read(out);
          const nchw = layout === 'nchw' ? got : host.nhwcToNchw(got, outShape);
          expect(nchw).toEqual(dtype === 'f16' ? roundToF16(g.out) : g.out);
          x.dispose();
          out.dispose();
        });
      }
    }
  }
});

describe('NCHW ↔ NHWC permutes (exact)', () => {
  for (const dtype of ['f32', 'f16'] as DType[]) {
    it(`match the host conversion both ways on [2, 12, 16, 32] ${dtype}`, async () => {
      const g = await readGolden('pixel_shuffle_1');
      const x = rt.upload(g.x, g.xShape, dtype);
      const nhwc = nchwToNhwc(rt, x);
      const back = nhwcToNchw(rt, nhwc);
      expect(nhwc.shape).toEqual([2, 16, 32, 12]);
      expect(back.shape).toEqual(g.xShape);
      const [gotNhwc, gotBack] = await rt.readMany([nhwc, back]);
      const ref = dtype === 'f16' ? roundToF16(g.x) : g.x;
      expect(gotNhwc).toEqual(host.nchwToNhwc(ref, g.xShape));
      expect(gotBack).toEqual(ref);
      for (const t of [x, nhwc, back]) t.dispose();
    });
  }
});

describe('permute against a host reference (exact)', () => {
  /** x.permute(order).contiguous() on the host, the output's dim `padTo.dim` zero-padded to `padTo.size`. */
  function hostPermute(x: Float32Array, shape: number[], order: number[], padTo?: { dim: number; size: number }): Float32Array {
    const strides = shape.map((_, d) => shape.slice(d + 1).reduce((p, n) => p * n, 1));
    const outShape = order.map((d, i) => (padTo?.dim === i ? padTo.size : shape[d]));
    const out = new Float32Array(outShape.reduce((p, n) => p * n, 1));
    for (let i = 0; i < out.length; i++) {
      let rest = i;
      let src = 0;
      let padded = false;
      for (let k = outShape.length - 1; k >= 0; k--) {
        const index = rest % outShape[k];
        rest = Math.floor(rest / outShape[k]);
        if (index >= shape[order[k]]) padded = true;
        src += index * strides[order[k]];
      }
      out[i] = padded ? 0 : x[src];
    }
    return out;
  }

  const cases: { shape: number[]; order: number[]; padTo?: { dim: number; size: number }; what: string }[] = [
    { shape: [2, 5, 3, 8], order: [0, 2, 1, 3], what: 'heads split (innermost kept: 4 per invocation)' },
    { shape: [2, 5, 3, 8], order: [0, 2, 1, 3], padTo: { dim: 2, size: 8 }, what: 'heads split, tokens zero-padded 5 → 8' },
    { shape: [2, 3, 5, 6], order: [0, 2, 1, 3], what: 'innermost of 6 (one per invocation)' },
    { shape: [2, 3, 4, 8], order: [3, 1, 0, 2], what: 'innermost moved' },
  ];
  for (const { shape, order, padTo, what } of cases) {
    for (const dtype of ['f32', 'f16'] as const) {
      it(`[${shape.join(', ')}] by [${order.join(', ')}]: ${what} (${dtype})`, async () => {
        const rt = await getRuntime();
        const x = Float32Array.from({ length: shape.reduce((p, n) => p * n, 1) }, (_, i) => i - 40);
        const t = rt.upload(x, shape, dtype);
        const out = permute(rt, t, order, padTo);
        expect(out.shape).toEqual(order.map((d, i) => (padTo?.dim === i ? padTo.size : shape[d])));
        expect(Array.from(await rt.read(out))).toEqual(Array.from(hostPermute(x, shape, order, padTo)));
        for (const u of [t, out]) u.dispose();
      });
    }
  }

  it('rejects an order that is no permutation and padding below the extent', async () => {
    const rt = await getRuntime();
    const t = rt.upload(new Float32Array(24), [2, 3, 4]);
    expect(() => permute(rt, t, [0, 0, 1])).toThrow('permute: order [0, 0, 1] is not a permutation of the 3 dims of [2, 3, 4]');
    expect(() => permute(rt, t, [0, 2, 1], { dim: 1, size: 3 })).toThrow('permute: cannot pad output dim 1 of [2, 4, 3] to 3');
    t.dispose();
  });
});

describe('shuffle input checks', () => {
  it('rejects pixelUnshuffle of a size the factor does not divide', () => {
    const x = rt.empty([1, 7, 8, 3], 'f32');
    expect(() => pixelUnshuffle(rt, x, 2)).toThrow('pixelUnshuffle: height 7 and width 8 must be divisible by the factor 2');
    x.dispose();
  });

  it('rejects pixelShuffle of channels the squared factor does not divide', () => {
    const x = rt.empty([1, 6, 4, 4], 'f32');
    expect(() => pixelShuffle(rt, x, 2, { layout: 'nchw' })).toThrow(
      'pixelShuffle: 6 channels are not divisible by the factor squared (4)',
    );
    x.dispose();
  });

  it('rejects a tensor that is not 4-D', () => {
    const x = rt.empty([4, 4, 3], 'f32');
    expect(() => nhwcToNchw(rt, x)).toThrow('nhwcToNchw: expected a 4-D tensor, got [4, 4, 3]');
    x.dispose();
  });
});
