import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { interpolateBicubicAA } from '../src/ops/interpolate.js';
import { bicubicAntialiasTaps } from '../src/ops/interpolate_weights.js';
import { openFileSource } from '../src/platform/file.js';
import type { DType } from '../src/runtime/dtype.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { getRuntime } from './helpers/gpu.js';
import { nchwToNhwc, nhwcToNchw } from './helpers/layout.js';

const FIXTURES = new URL('./fixtures/ops/', import.meta.url).pathname;
const F32: Tolerance = { atol: 1e-6, rtol: 1e-5 }; // golden README §2, ops/interpolate_*
const F16: Tolerance = { atol: 2e-3, rtol: 4e-3 }; // golden README §2, ops/f16_* (inputs rounded to f16)

// Every ops/interpolate_bicubic_aa_* case: up, down, mixed, non-square, identity, to 1×1.
const CASES = [
  '24x24_to_64x64',
  '24x24_to_32x32',
  '24x24_to_16x16',
  '24x24_to_12x12',
  '24x24_to_24x24',
  '3x6_to_8x16',
  '3x6_to_4x8',
  '3x6_to_2x4',
  '24x40_to_16x27',
  '24x40_to_48x80',
  '5x7_to_9x3',
  '5x7_to_1x1',
];

interface Case {
  x: Float32Array;
  /** NCHW */
  xShape: number[];
  out: Float32Array;
  outShape: number[];
}

async function loadCase(name: string): Promise<Case> {
  const file = await SafetensorsFile.open(await openFileSource(join(FIXTURES, `interpolate_bicubic_aa_${name}.safetensors`)));
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

describe('interpolateBicubicAA vs torch F.interpolate(bicubic, antialias, align_corners)', () => {
  for (const name of CASES) {
    for (const dtype of ['f32', 'f16'] as DType[]) {
      it(`${name} ${dtype}`, async () => {
        const rt = await getRuntime();
        const c = await loadCase(name);
        const [b, ch, h, w] = c.xShape;
        const [oh, ow] = c.outShape.slice(2);
        const x = rt.upload(nchwToNhwc(c.x, c.xShape), [b, h, w, ch], dtype);
        const y = interpolateBicubicAA(rt, x, oh, ow);
        expect(y.shape).toEqual([b, oh, ow, ch]);
        expect(y.dtype).toBe(rt.storageDType(dtype));
        const got = nhwcToNchw(await rt.read(y), y.shape);
        expectClose(got, c.out, dtype === 'f32' ? F32 : F16, `${name} ${dtype}`);
        x.dispose();
        y.dispose();
      });
    }
  }

  it('resizing one axis at a time (single-pass paths) equals the two-pass result bit for bit', async () => {
    const rt = await getRuntime();
    const c = await loadCase('24x40_to_16x27');
    const [b, ch, h, w] = c.xShape;
    const [oh, ow] = c.outShape.slice(2);
    const x = rt.upload(nchwToNhwc(c.x, c.xShape), [b, h, w, ch]);
    const both = interpolateBicubicAA(rt, x, oh, ow);
    const widthOnly = interpolateBicubicAA(rt, x, h, ow);
    const thenHeight = interpolateBicubicAA(rt, widthOnly, oh, ow);
    const [expected, got] = await rt.readMany([both, thenHeight]);
    expect(Array.from(got)).toEqual(Array.from(expected));
    for (const t of [x, both, widthOnly, thenHeight]) t.dispose();
  });

  it('keeps torch’s f32 weight tables: 24 → 12 uses 11 taps, 1 output mixes the first two samples', () => {
    const down = bicubicAntialiasTaps(24, 12);
    expect(down.taps).toBe(11);
    const single = bicubicAntialiasTaps(7, 1);
    // align_corners with one output: scale 0, centre 0, taps at distances 0.5 and 1.5.
    expect(Array.from(single.table.subarray(0, 4))).toEqual([0, 2, Math.fround(0.5625 / 0.5), Math.fround(-0.0625 / 0.5)]);
  });

  it('rejects a tensor that is not 4-D NHWC and sizes that are not positive integers', async () => {
    const rt = await getRuntime();
    const flat = rt.upload(new Float32Array(12), [3, 4]);
    const x = flat.reshape([1, 3, 4, 1]);
    expect(() => interpolateBicubicAA(rt, flat, 2, 2)).toThrow('interpolateBicubicAA: expected an NHWC tensor [B, H, W, C], got [3, 4]');
    expect(() => interpolateBicubicAA(rt, x, 0, 2)).toThrow('interpolateBicubicAA: output size must be positive integers, got 0×2');
    expect(() => bicubicAntialiasTaps(0, 4)).toThrow('interpolate: sizes must be positive integers, got 0 → 4');
    flat.dispose();
  });
});
