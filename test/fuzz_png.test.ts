import { describe, expect, it } from 'vitest';
import { decodePng, encodePng, MAX_PNG_PIXELS, PngError } from '../src/io/png.js';
import { formatCounts, runFuzz } from './fuzz/harness.js';
import { pngSeeds, pngTarget } from './fuzz/png_cases.js';

// Seeded fuzzing of the PNG decoder that feeds the VQGAN round trip (scripts/fuzz.ts runs longer
// campaigns): a case ends in an RGB image in [0, 1] or a PngError, within 2 s.
const SEED = 20261127;

/** A 1×1 PNG whose IHDR claims `width` × `height` (CRC fixed up, so only the size is wrong). */
function claiming(width: number, height: number): Uint8Array {
  const png = encodePng({ shape: [1, 3, 1, 1], data: new Float32Array(3) });
  const view = new DataView(png.buffer, png.byteOffset);
  view.setUint32(16, width);
  view.setUint32(20, height);
  let c = 0xffffffff;
  for (const b of png.subarray(12, 29)) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  view.setUint32(29, (c ^ 0xffffffff) >>> 0);
  return png;
}

describe('fuzz: PNG input of the VQGAN round trip', () => {
  it('10,000 corrupted PNGs: each an RGB image in [0, 1] or a PngError, none slow', async () => {
    const counts = await runFuzz(pngTarget(pngSeeds()), 10_000, SEED);
    console.log(formatCounts(counts));
    expect(counts.failures).toEqual([]);
    expect({ cases: counts.cases, crashes: counts.crashes, hangs: counts.hangs }).toEqual({ cases: 10_000, crashes: 0, hangs: 0 });
    expect(counts.errors).toBeGreaterThan(4000);
    expect(counts.results).toBeGreaterThan(500);
  }, 120_000);

  it('refuses absurd dimensions before decoding, and says what is wrong with other input', () => {
    expect(() => decodePng(claiming(100_000, 100_000), 'big.png')).toThrow(
      new PngError(`big.png: the image is 100000×100000; at most ${MAX_PNG_PIXELS} pixels (4096×4096) are read`),
    );
    expect(() => decodePng(claiming(0, 5), 'empty.png')).toThrow(
      new PngError(`empty.png: the image is 0×5; at most ${MAX_PNG_PIXELS} pixels (4096×4096) are read`),
    );
    expect(() => decodePng(new TextEncoder().encode('GIF89a'), 'x.gif')).toThrow(
      new PngError('x.gif: not a PNG (no PNG signature followed by an IHDR chunk)'),
    );
    const png = encodePng({ shape: [1, 3, 2, 2], data: new Float32Array(12).fill(0.25) });
    expect(() => decodePng(png.subarray(0, png.byteLength - 20), 'cut.png')).toThrow(PngError);
  });
});
