import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { nchwToNhwc, nhwcToNchw, pixelShuffle, pixelUnshuffle, type Layout } from '../src/ops/shuffle.js';
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
