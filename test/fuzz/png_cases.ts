/**
 * Fuzz target: PNG input of the VQGAN round trip (decodePng). Seeds are small images in several
 * colour types and bit depths. Mutations are raw (truncation, bit flips, which mostly fail a CRC) and
 * chunk-aware with the CRC recomputed, so they reach the decoder: IHDR fields set to absurd values
 * (zero or 10⁹ pixels wide, bad bit depths and colour types), corrupted or shortened IDAT data,
 * chunks duplicated, dropped or added, and chunk lengths that lie.
 */
import { PNG } from 'pngjs';
import { decodePng, PngError } from '../../src/io/png.js';
import type { HostTensor } from '../../src/pipeline/host_tensor.js';
import type { FuzzTarget } from './harness.js';
import type { Random } from './random.js';

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

interface Chunk {
  type: string;
  data: Uint8Array;
}

const SIGNATURE = Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function splitChunks(png: Uint8Array): Chunk[] {
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: Chunk[] = [];
  for (let at = 8; at + 12 <= png.byteLength; ) {
    const length = view.getUint32(at);
    chunks.push({ type: String.fromCharCode(...png.subarray(at + 4, at + 8)), data: png.slice(at + 8, at + 8 + length) });
    at += 12 + length;
  }
  return chunks;
}

/** Chunks written back with correct CRCs; `lengthLie` adds to the length field of one chunk. */
function joinChunks(chunks: readonly Chunk[], lengthLie?: { index: number; delta: number }): Uint8Array {
  const parts: Uint8Array[] = [SIGNATURE];
  chunks.forEach((chunk, i) => {
    const out = new Uint8Array(12 + chunk.data.byteLength);
    const view = new DataView(out.buffer);
    view.setUint32(0, (chunk.data.byteLength + (lengthLie?.index === i ? lengthLie.delta : 0)) >>> 0);
    for (let k = 0; k < 4; k++) out[4 + k] = chunk.type.charCodeAt(k) & 0xff;
    out.set(chunk.data, 8);
    view.setUint32(8 + chunk.data.byteLength, crc32(out.subarray(4, 8 + chunk.data.byteLength)));
    parts.push(out);
  });
  const total = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let offset = 0;
  for (const p of parts) {
    total.set(p, offset);
    offset += p.byteLength;
  }
  return total;
}

/** Small PNGs of every colour type pngjs writes, 8- and 16-bit. */
export function pngSeeds(): Uint8Array[] {
  const seeds: Uint8Array[] = [];
  for (const [width, height, colorType, bitDepth] of [
    [8, 8, 2, 8],
    [5, 3, 6, 8],
    [16, 4, 0, 8],
    [3, 7, 4, 8],
    [4, 4, 2, 16],
    [1, 1, 6, 16],
  ] as const) {
    const png = new PNG({ width, height, colorType, bitDepth, inputHasAlpha: true });
    png.data = Buffer.from(Array.from({ length: width * height * 4 }, (_, i) => (i * 53) % 256));
    seeds.push(new Uint8Array(PNG.sync.write(png, { colorType, bitDepth, inputHasAlpha: true })));
  }
  return seeds;
}

function setIhdr(random: Random, data: Uint8Array): Uint8Array {
  if (data.byteLength < 13) return data;
  const out = Uint8Array.from(data);
  const view = new DataView(out.buffer);
  random.weighted<() => void>([
    [3, () => view.setUint32(random.pick([0, 4]), random.pick([0, 1, 2, 3, 4097, 65536, 100_000, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1]))],
    [1, () => {
      view.setUint32(0, random.between(1, 64));
      view.setUint32(4, random.between(1, 64));
    }],
    [2, () => (out[8] = random.pick([0, 1, 2, 3, 4, 5, 7, 8, 9, 16, 32, 255]))], // bit depth
    [2, () => (out[9] = random.pick([0, 1, 2, 3, 4, 5, 6, 7, 8, 255]))], // colour type
    [1, () => (out[10 + random.int(3)] = random.pick([1, 2, 255]))], // compression, filter, interlace
  ])();
  return out;
}

function mutateChunks(random: Random, png: Uint8Array): Uint8Array {
  const chunks = splitChunks(png);
  if (chunks.length === 0) return png;
  const pickIndex = (type?: string) => {
    const matching = chunks.map((c, i) => [c, i] as const).filter(([c]) => type === undefined || c.type === type);
    return matching.length ? random.pick(matching)[1] : random.int(chunks.length);
  };
  return random.weighted<() => Uint8Array>([
    [4, () => {
      const i = pickIndex('IHDR');
      chunks[i] = { ...chunks[i], data: setIhdr(random, chunks[i].data) };
      return joinChunks(chunks);
    }],
    [3, () => {
      const i = pickIndex('IDAT');
      const data = Uint8Array.from(chunks[i].data);
      random.weighted<() => void>([
        [2, () => (data[random.int(data.byteLength)] ^= 1 << random.int(8))],
        [1, () => data.fill(random.int(256), random.int(data.byteLength))],
      ])();
      chunks[i] = { ...chunks[i], data: random.chance(0.3) ? data.slice(0, random.int(data.byteLength)) : data };
      return joinChunks(chunks);
    }],
    [1, () => joinChunks(chunks.filter((_, i) => i !== pickIndex()))],
    [1, () => {
      const i = pickIndex();
      return joinChunks([...chunks.slice(0, i + 1), chunks[i], ...chunks.slice(i + 1)]);
    }],
    [1, () => {
      const i = random.int(chunks.length + 1);
      const type = random.pick(['tEXt', 'PLTE', 'tRNS', 'gAMA', 'IEND', 'IDAT', 'zzZz', 'IHDR']);
      return joinChunks([...chunks.slice(0, i), { type, data: random.bytes(random.int(40)) }, ...chunks.slice(i)]);
    }],
    [1, () => joinChunks(chunks, { index: pickIndex(), delta: random.pick([-1, 1, 1000, 2 ** 31, -(2 ** 20)]) })],
  ])();
}

function mutateRaw(random: Random, png: Uint8Array): Uint8Array {
  return random.weighted<() => Uint8Array>([
    [2, () => png.slice(0, random.int(png.byteLength))],
    [2, () => {
      const out = Uint8Array.from(png);
      for (let k = random.between(1, 6); k > 0; k--) out[random.int(out.byteLength)] ^= 1 << random.int(8);
      return out;
    }],
    [1, () => random.bytes(random.int(100))],
    [1, () => Uint8Array.from([...SIGNATURE, ...random.bytes(random.int(64))])],
  ])();
}

export function pngTarget(seeds: readonly Uint8Array[]): FuzzTarget<Uint8Array> {
  return {
    name: 'PNG decode (VQGAN round-trip input)',
    generate(random) {
      let png = random.pick(seeds);
      for (let k = random.between(1, 2); k > 0; k--) png = random.chance(0.75) ? mutateChunks(random, png) : mutateRaw(random, png);
      return png;
    },
    run: (png) => decodePng(png, 'fuzz.png'),
    isTypedError: (err) => err instanceof PngError,
    checkResult(result) {
      const { shape, data } = result as HostTensor;
      const [n, c, h, w] = shape;
      if (shape.length !== 4 || n !== 1 || c !== 3 || !(h > 0 && w > 0)) return `shape [${shape.join(', ')}]`;
      if (data.length !== 3 * h * w) return `${data.length} values for [${shape.join(', ')}]`;
      for (const v of data) if (!(v >= 0 && v <= 1)) return `a value ${v} outside [0, 1]`;
      return undefined;
    },
    describe: (png) => `${png.byteLength} bytes: ${Buffer.from(png.subarray(0, 48)).toString('hex')}`,
    timeBoundMs: 2000,
  };
}
