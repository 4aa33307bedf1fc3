import { createServer, type Server } from 'node:http';
import { mkdtemp, open, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import {
  encodeSafetensors,
  SafetensorsError,
  SafetensorsFile,
  ShardedSafetensors,
  writeSafetensors,
  type SafetensorsDType,
  type TensorToWrite,
} from '../src/io/safetensors.js';
import { httpSource, memorySource, openFileSource, writeFileAtomic } from '../src/platform/file.js';
import {
  bf16BitsToF32,
  f16BitsToF32,
  f16BitsToF32Array,
  f32ArrayToF16Bits,
  f32ToF16Bits,
} from '../src/runtime/dtype.js';

const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;

let scratch: string;
beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'safetensors-test-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

function f32Bits(value: number): number {
  return new Uint32Array(Float32Array.of(value).buffer)[0];
}

function f32FromBits(bits: number): number {
  return new Float32Array(Uint32Array.of(bits).buffer)[0];
}

describe('f16 / bf16 conversions', () => {
  it('rounds f32 to f16 to nearest even at known bit patterns', () => {
    const cases: [number, number][] = [
      [1, 0x3c00],
      [-2, 0xc000],
      [1 / 3, 0x3555],
      [0.1, 0x2e66],
      [Math.PI, 0x4248],
      [65504, 0x7bff], // largest finite f16
      [65519.99, 0x7bff], // just below the midpoint to infinity
      [65520, 0x7c00], // the midpoint rounds to even: infinity
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [NaN, 0x7e00],
      [-0, 0x8000],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -14 - 2 ** -24, 0x03ff], // largest subnormal
      [2 ** -24, 0x0001], // smallest subnormal
      [2 ** -25, 0x0000], // tie between 0 and 2^-24: even is 0
      [1.5 * 2 ** -25, 0x0001],
      [3 * 2 ** -25, 0x0002], // tie between subnormals 1 and 2: even is 2
      [1e-8, 0x0000],
      [1 + 2 ** -11, 0x3c00], // tie: even mantissa 0
      [1 + 3 * 2 ** -11, 0x3c02], // tie: even mantissa 2
      [1.5 * 2 ** -126, 0x0000], // an f32 normal far below f16 range
      [2 ** -149, 0x0000], // f32 subnormal
    ];
    for (const [value, bits] of cases) expect([value, f32ToF16Bits(value)]).toEqual([value, bits]);
  });

  it('widens f16 and bf16 bit patterns exactly', () => {
    const f16: [number, number][] = [
      [0x3c00, 1],
      [0x7bff, 65504],
      [0x0001, 2 ** -24],
      [0x03ff, 1023 * 2 ** -24],
      [0x3555, 0.333251953125],
      [0xfc00, -Infinity],
    ];
    for (const [bits, value] of f16) expect(f16BitsToF32(bits)).toBe(value);
    expect(Object.is(f16BitsToF32(0x8000), -0)).toBe(true);
    expect(f16BitsToF32(0x7e00)).toBeNaN();
    const bf16: [number, number][] = [
      [0x3f80, 1],
      [0xc000, -2],
      [0x3eab, 0.333984375],
      [0x7f80, Infinity],
      [0x0001, 2 ** -133], // bf16 subnormal
    ];
    for (const [bits, value] of bf16) expect(bf16BitsToF32(bits)).toBe(value);
    expect(bf16BitsToF32(0x7fc0)).toBeNaN();
  });

  it('round-trips all 65536 f16 bit patterns (NaNs become the canonical quiet NaN)', () => {
    const all = Uint16Array.from({ length: 65536 }, (_, i) => i);
    const widened = f16BitsToF32Array(all);
    const narrowed = f32ArrayToF16Bits(widened);
    const wrong: number[] = [];
    for (let bits = 0; bits < 65536; bits++) {
      const isNaN = (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
      const want = isNaN ? (bits & 0x8000) | 0x7e00 : bits;
      if (narrowed[bits] !== want || !Object.is(widened[bits], f16BitsToF32(bits))) wrong.push(bits);
    }
    expect(wrong).toEqual([]);
  });

  it('rounds every midpoint between neighbouring f16 values to the even one, and its f32 neighbours away', () => {
    // Up to 0x7bff, the largest finite value (the midpoint above it, 65520, is a known pattern above).
    for (let bits = 0; bits < 0x7bff; bits++) {
      const mid = (f16BitsToF32(bits) + f16BitsToF32(bits + 1)) / 2; // exact in f32
      const even = bits % 2 === 0 ? bits : bits + 1;
      const below = f32FromBits(f32Bits(mid) - 1);
      const above = f32FromBits(f32Bits(mid) + 1);
      const got = [f32ToF16Bits(mid), f32ToF16Bits(below), f32ToF16Bits(above), f32ToF16Bits(-mid)];
      const want = [even, bits, bits + 1, 0x8000 | even];
      if (got.some((g, i) => g !== want[i])) expect([bits, got]).toEqual([bits, want]);
    }
  });

  it("matches numpy's float32 -> float16 on 20480 cases (test/fixtures/dtype/make_f16_cases.py)", async () => {
    const file = await SafetensorsFile.open(await openFileSource(join(FIXTURES, 'dtype/f32_to_f16_numpy.safetensors')));
    const x = await file.readF32('x');
    const numpy = new Uint16Array((await file.readRaw('f16')).buffer);
    const ours = await file.readF16Bits('x');
    await file.close();
    const xBits = new Uint32Array(x.buffer);
    let mismatches = 0;
    for (let i = 0; i < x.length; i++) {
      // numpy keeps NaN payloads; torch (and we) return the canonical quiet NaN.
      const want = Number.isNaN(x[i]) ? ((xBits[i] >>> 16) & 0x8000) | 0x7e00 : numpy[i];
      if (ours[i] !== want) mismatches++;
    }
    expect(x.length).toBe(20480);
    expect(mismatches).toBe(0);
  });
});

/** Little-endian u64 header length + `header` text + `dataBytes` zero bytes. */
function withHeader(header: string, dataBytes = 0, declaredLength?: bigint): Uint8Array {
  const json = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + json.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, declaredLength ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
}

const entry = (dtype: string, shape: unknown, offsets: unknown) =>
  JSON.stringify({ dtype, shape, data_offsets: offsets });

describe('SafetensorsFile rejects malformed files', () => {
  const F32x2 = entry('F32', [2], [0, 8]);
  const valid = encodeSafetensors({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(4) } });
  const nonUtf8 = withHeader('{"\u00ff":{}}');
  nonUtf8.set([0xff], 10); // replaces the first byte of the 2-byte UTF-8 sequence
  const deep = `${'['.repeat(100_000)}${']'.repeat(100_000)}`;
  const dtypes = 'BOOL, U8, I8, F8_E5M2, F8_E4M3, I16, U16, F16, BF16, I32, U32, F32, I64, U64, F64';
  const cases: [string, Uint8Array, string][] = [
    ['empty file', new Uint8Array(0), 'file is 0 bytes long, shorter than the 8-byte header length that starts it'],
    ['truncated length', new Uint8Array(5), 'file is 5 bytes long, shorter than the 8-byte header length that starts it'],
    ['header length past EOF', withHeader('{}', 0, 64n), 'header length 64 runs past the end of the file (10 bytes)'],
    [
      'absurd header length',
      withHeader('{}', 0, 2n ** 40n),
      'header length 1099511627776 exceeds the 100000000-byte limit (not a safetensors file?)',
    ],
    [
      'header length 2^64 - 1',
      withHeader('{}', 0, 2n ** 64n - 1n),
      'header length 18446744073709551615 exceeds the 100000000-byte limit (not a safetensors file?)',
    ],
    ['header not UTF-8', nonUtf8, 'header is not valid UTF-8'],
    ['header not JSON', withHeader('{"w":{"dtype":"F32",'), 'header is not valid JSON'],
    ['header padded with NULs', withHeader('{}\0\0\0\0\0\0'), 'header is not valid JSON'],
    ['empty header', withHeader(''), 'header is not valid JSON'],
    ['header not an object', withHeader('[1,2]'), 'header must be a JSON object, got [1,2]'],
    ['entry not an object', withHeader('{"w":3}'), 'tensor "w": entry must be a JSON object, got 3'],
    [
      'deeply nested entry',
      withHeader(`{"w":${deep}}`),
      'tensor "w": entry must be a JSON object, got a deeply nested array',
    ],
    [
      'unknown dtype',
      withHeader(`{"w":${entry('F128', [1], [0, 16])}}`, 16),
      `tensor "w": dtype must be one of ${dtypes}; got "F128"`,
    ],
    [
      'missing dtype',
      withHeader('{"w":{"shape":[1],"data_offsets":[0,4]}}', 4),
      `tensor "w": dtype must be one of ${dtypes}; got nothing`,
    ],
    [
      'negative shape',
      withHeader(`{"w":${entry('F32', [-1], [0, 4])}}`, 4),
      'tensor "w": shape must be an array of non-negative integers, got [-1]',
    ],
    [
      'fractional shape',
      withHeader(`{"w":${entry('F32', [2.5], [0, 10])}}`, 10),
      'tensor "w": shape must be an array of non-negative integers, got [2.5]',
    ],
    [
      'shape not an array',
      withHeader(`{"w":${entry('F32', '2x2', [0, 16])}}`, 16),
      'tensor "w": shape must be an array of non-negative integers, got "2x2"',
    ],
    [
      'data_offsets reversed',
      withHeader(`{"w":${entry('F32', [1], [8, 4])}}`, 8),
      'tensor "w": data_offsets must be [begin, end] with integers 0 <= begin <= end, got [8,4]',
    ],
    [
      'data_offsets with one number',
      withHeader(`{"w":${entry('F32', [1], [4])}}`, 4),
      'tensor "w": data_offsets must be [begin, end] with integers 0 <= begin <= end, got [4]',
    ],
    [
      'data_offsets as strings',
      withHeader(`{"w":${entry('F32', [1], ['0', '4'])}}`, 4),
      'tensor "w": data_offsets must be [begin, end] with integers 0 <= begin <= end, got ["0","4"]',
    ],
    [
      'extent mismatch',
      withHeader(`{"w":${entry('F32', [2, 3], [0, 20])}}`, 20),
      'tensor "w": shape [2, 3] of F32 needs 24 bytes but data_offsets [0, 20] span 20',
    ],
    [
      'extent beyond 2^53',
      withHeader(`{"w":${entry('F32', [2 ** 30, 2 ** 30, 2 ** 30], [0, 8])}}`, 8),
      'tensor "w": shape [1073741824, 1073741824, 1073741824] of F32 needs too many bytes but data_offsets [0, 8] span 8',
    ],
    [
      'offsets past EOF',
      withHeader(`{"w":${entry('F32', [4], [0, 16])}}`, 8),
      'tensor "w": data_offsets [0, 16] run past the end of the data area (8 bytes)',
    ],
    [
      'truncated data',
      valid.subarray(0, valid.length - 4),
      'tensor "w": data_offsets [0, 16] run past the end of the data area (12 bytes)',
    ],
    [
      'overlapping tensors',
      withHeader(`{"a":${entry('F32', [4], [0, 16])},"b":${entry('F32', [4], [8, 24])}}`, 24),
      'tensor "b": data_offsets [8, 24] overlap tensor "a" at [0, 16]',
    ],
    [
      'empty tensor inside another',
      withHeader(`{"a":${entry('F32', [4], [0, 16])},"z":${entry('F32', [0], [8, 8])}}`, 16),
      'tensor "z": data_offsets [8, 8] overlap tensor "a" at [0, 16]',
    ],
    [
      'gap between tensors',
      withHeader(`{"a":${F32x2},"b":${entry('F32', [2], [16, 24])}}`, 24),
      'tensor "b": data_offsets [16, 24] leave a gap after data offset 8 (tensors must be stored back to back)',
    ],
    ['trailing bytes', withHeader(`{"a":${F32x2}}`, 16), '8 bytes after the last tensor are not described by the header'],
    ['duplicate tensor names', withHeader(`{"w":${F32x2},"w":${F32x2}}`, 8), 'header names tensor "w" twice'],
    [
      'duplicate names spelled differently',
      withHeader(`{"w":${F32x2},"\\u0077":${F32x2}}`, 8),
      'header names tensor "w" twice',
    ],
    [
      'duplicate key in an entry',
      withHeader('{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 8),
      'tensor "w": entry has key "dtype" twice',
    ],
    [
      'metadata not an object',
      withHeader('{"__metadata__":["a"]}'),
      '__metadata__ must be a JSON object of strings, got ["a"]',
    ],
    [
      'metadata value not a string',
      withHeader('{"__metadata__":{"format":1}}'),
      '__metadata__ value for key "format" must be a string, got 1',
    ],
    ['metadata duplicate key', withHeader('{"__metadata__":{"k":"a","k":"b"}}'), '__metadata__ has key "k" twice'],
  ];

  it.each(cases)('%s', async (_title, bytes, message) => {
    const err = await failure(SafetensorsFile.open(memorySource('bad.safetensors', bytes)));
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(err.message).toBe(`bad.safetensors: ${message}`);
  });

  it('either opens or throws SafetensorsError for 3000 random corruptions of a valid file', async () => {
    const original = encodeSafetensors(
      {
        ids: { dtype: 'I64', shape: [3], data: BigInt64Array.of(1n, 2n, 3n) },
        w: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
        h: { dtype: 'F16', shape: [5], data: new Uint16Array(5) },
      },
      { format: 'pt' },
    );
    let state = 12345;
    const random = (n: number) => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state % n;
    };
    const outcomes = { opened: 0, rejected: 0 };
    for (let trial = 0; trial < 3000; trial++) {
      let bytes = original.slice();
      const kind = random(3);
      if (kind === 0) {
        for (let flips = 1 + random(4); flips > 0; flips--) bytes[random(bytes.length)] ^= 1 << random(8);
      } else if (kind === 1) {
        bytes = bytes.slice(0, random(bytes.length));
      } else {
        // Overwrite a header byte with a JSON-significant character.
        bytes[8 + random(bytes.length - 8)] = '{}[]",:0-9 '.charCodeAt(random(11));
      }
      try {
        const file = await SafetensorsFile.open(memorySource('fuzz', bytes));
        for (const name of file.tensors.keys()) await file.readRaw(name);
        outcomes.opened++;
      } catch (err) {
        if (!(err instanceof SafetensorsError)) throw err;
        outcomes.rejected++;
      }
    }
    expect(outcomes.rejected).toBeGreaterThan(2000);
    expect(outcomes.opened).toBeGreaterThan(10);
  });
});

const everyDType: Record<SafetensorsDType, TensorToWrite> = {
  BOOL: { dtype: 'BOOL', shape: [5], data: Uint8Array.of(0, 1, 1, 0, 1) },
  U8: { dtype: 'U8', shape: [2, 3], data: Uint8Array.of(0, 1, 2, 253, 254, 255) },
  I8: { dtype: 'I8', shape: [5], data: Int8Array.of(-128, -1, 0, 1, 127) },
  F8_E5M2: { dtype: 'F8_E5M2', shape: [4], data: Uint8Array.of(0x3c, 0xbc, 0x7c, 0x01) },
  F8_E4M3: { dtype: 'F8_E4M3', shape: [2, 2], data: Uint8Array.of(0x38, 0xb8, 0x7e, 0x01) },
  I16: { dtype: 'I16', shape: [5], data: Int16Array.of(-32768, -2, 0, 3, 32767) },
  U16: { dtype: 'U16', shape: [3], data: Uint16Array.of(0, 1, 65535) },
  F16: { dtype: 'F16', shape: [5], data: Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00) },
  BF16: { dtype: 'BF16', shape: [2, 2], data: Uint16Array.of(0x3f80, 0xc000, 0x7f80, 0x3eab) },
  I32: { dtype: 'I32', shape: [4], data: Int32Array.of(-(2 ** 31), -1, 0, 2 ** 31 - 1) },
  U32: { dtype: 'U32', shape: [2], data: Uint32Array.of(0, 2 ** 32 - 1) },
  F32: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1.5, -2.25, 3e38, 1e-45) },
  I64: { dtype: 'I64', shape: [4], data: BigInt64Array.of(-(2n ** 53n) + 1n, -1n, 0n, 2n ** 53n - 1n) },
  U64: { dtype: 'U64', shape: [2], data: BigUint64Array.of(0n, 2n ** 64n - 1n) },
  F64: { dtype: 'F64', shape: [3], data: Float64Array.of(Math.PI, -1e300, 5e-324) },
};

/** -1 when equal; deep equality on megabyte arrays is far too slow in vitest. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.compare(a, b) === 0) return -1;
  const index = a.findIndex((byte, i) => byte !== b[i]);
  return index === -1 ? Math.min(a.length, b.length) : index;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

describe('writer → reader round trip', () => {
  const tensors: Record<string, TensorToWrite> = {
    ...everyDType,
    scalar: { dtype: 'F32', shape: [], data: Float32Array.of(7) },
    empty: { dtype: 'F32', shape: [0, 3], data: new Float32Array(0) },
  };
  const metadata = { format: 'pt', note: 'Würstchen ☕' };
  let path: string;
  let file: SafetensorsFile;
  beforeAll(async () => {
    path = join(scratch, 'every-dtype.safetensors');
    await writeSafetensors(path, tensors, metadata);
    file = await SafetensorsFile.open(await openFileSource(path));
  });
  afterAll(() => file.close());

  it('reads back every dtype, shape and byte, and the metadata', async () => {
    expect(file.metadata).toEqual(metadata);
    expect(file.tensors.size).toBe(Object.keys(tensors).length);
    for (const [name, { dtype, shape, data }] of Object.entries(tensors)) {
      const info = file.tensors.get(name);
      expect({ name, dtype: info?.dtype, shape: info?.shape }).toEqual({ name, dtype, shape });
      expect(await file.readRaw(name)).toEqual(bytesOf(data));
    }
  });

  it('writes the canonical layout: sorted by name, back to back, header padded to 8 bytes', async () => {
    const infos = [...file.tensors.values()];
    expect(infos.map((t) => t.name)).toEqual(Object.keys(tensors).sort());
    expect(infos[0].begin % 8).toBe(0);
    for (let i = 1; i < infos.length; i++) expect(infos[i].begin).toBe(infos[i - 1].end);
    expect(infos[infos.length - 1].end).toBe(file.source.size);
    expect(firstDifference(await readFile(path), encodeSafetensors(tensors, metadata))).toBe(-1);
  });

  it('encodes a small file byte for byte', () => {
    const bytes = encodeSafetensors({ b: everyDType.U16, a: everyDType.BOOL }, { k: 'v' });
    const header =
      '{"__metadata__":{"k":"v"},"a":{"dtype":"BOOL","shape":[5],"data_offsets":[0,5]},' +
      '"b":{"dtype":"U16","shape":[3],"data_offsets":[5,11]}}';
    const padded = header.padEnd(Math.ceil(header.length / 8) * 8, ' ');
    const expected = [
      ...new Uint8Array(new BigUint64Array([BigInt(padded.length)]).buffer),
      ...new TextEncoder().encode(padded),
      ...[0, 1, 1, 0, 1],
      ...[0, 0, 1, 0, 255, 255],
    ];
    expect([...bytes]).toEqual(expected);
  });

  it('converts float dtypes to f32 and f16', async () => {
    expect([...(await file.readF32('F32'))]).toEqual([...(everyDType.F32.data as Float32Array)]);
    expect([...(await file.readF32('F16'))]).toEqual([1, -2, 65504, 2 ** -24, Infinity]);
    expect([...(await file.readF32('BF16'))]).toEqual([1, -2, Infinity, 0.333984375]);
    expect([...(await file.readF32('F64'))]).toEqual([Math.fround(Math.PI), -Infinity, 0]);
    expect([...(await file.readF16Bits('F16'))]).toEqual([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00]);
    expect([...(await file.readF16Bits('F32'))]).toEqual([0x3e00, 0xc080, 0x7c00, 0x0000]);
    expect([...(await file.readF16Bits('BF16'))]).toEqual([0x3c00, 0xc000, 0x7c00, 0x3558]);
    expect([...(await file.readF16Bits('F64'))]).toEqual([0x4248, 0xfc00, 0x0000]);
    expect([...(await file.readF32('scalar'))]).toEqual([7]);
    expect(await file.readF32('empty')).toHaveLength(0);
  });

  it('reads I64 as numbers', async () => {
    expect(await file.readI64AsNumbers('I64')).toEqual([-(2 ** 53) + 1, -1, 0, 2 ** 53 - 1]);
  });

  it('rejects reads that do not fit the tensor', async () => {
    const messages = await Promise.all([
      failure(file.readF32('I64')),
      failure(file.readF16Bits('U8')),
      failure(file.readI64AsNumbers('F32')),
      failure(file.readRaw('missing')),
    ]);
    expect(messages.map((e) => e.message)).toEqual([
      `${path}: tensor "I64": dtype I64 is not a floating-point type`,
      `${path}: tensor "U8": dtype U8 is not a floating-point type`,
      `${path}: tensor "F32": dtype is F32, expected I64`,
      `${path}: tensor "missing": no such tensor in this file`,
    ]);
    const big = encodeSafetensors({ ids: { dtype: 'I64', shape: [2], data: BigInt64Array.of(1n, 2n ** 53n) } });
    const err = await failure((await SafetensorsFile.open(memorySource('ids', big))).readI64AsNumbers('ids'));
    expect(err.message).toBe('ids: tensor "ids": value 9007199254740992 at index 1 is not a safe integer');
  });

  it('refuses to write data that does not match its shape', () => {
    const message = (tensors: Record<string, TensorToWrite>) => {
      try {
        encodeSafetensors(tensors);
      } catch (err) {
        return (err as Error).message;
      }
      return 'no error';
    };
    expect(message({ w: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } })).toBe(
      '(in memory): tensor "w": shape [2, 2] of F32 needs 16 bytes but data has 12',
    );
    expect(message({ __metadata__: { dtype: 'U8', shape: [1], data: new Uint8Array(1) } })).toBe(
      '(in memory): tensor "__metadata__": this name is reserved for the metadata',
    );
  });
});

describe('model files', () => {
  let index: { models: Record<string, { state_dict_tensors: number }> };
  beforeAll(async () => {
    index = JSON.parse(await readFile(join(FIXTURES, 'models/index.json'), 'utf8'));
  });
  // Element count, Σx and Σ|x| of every F32 tensor, computed in float64 by numpy over the raw bytes.
  const expected: Record<string, [number, number, number]> = {
    decoder: [223712, -38.161658555188524, 23997.386043202554],
    prior: [136160, -64.06901558029017, 12274.232495414077],
    text_encoder_decoder: [1597162, 677.1271757006253, 633780.1801656338],
    text_encoder_prior: [1597162, -732.6523838212408, 633493.748236022],
    vqgan: [48026, 16.05475931790562, 4891.2385149599395],
  };
  const integerTensors: Record<string, Record<string, number[]>> = {
    vqgan: { 'down_blocks.3.1.num_batches_tracked': [29948] }, // a BatchNorm buffer
  };

  it.each(Object.keys(expected))('%s: every tensor, its values, and a byte-identical re-encoding', async (model) => {
    const folder = join(FIXTURES, 'models', model);
    const [name] = (await readdir(folder)).filter((f) => f.endsWith('.safetensors'));
    const path = join(folder, name);
    const file = await SafetensorsFile.open(await openFileSource(path));
    expect(file.tensors.size).toBe(index.models[model].state_dict_tensors);
    expect(file.metadata).toEqual({ format: 'pt' });
    let count = 0;
    let sum = 0;
    let absSum = 0;
    const copy: Record<string, TensorToWrite> = {};
    const integers: Record<string, number[]> = {};
    for (const info of file.tensors.values()) {
      if (info.dtype === 'I64') {
        integers[info.name] = await file.readI64AsNumbers(info.name);
        copy[info.name] = { dtype: info.dtype, shape: info.shape, data: await file.readRaw(info.name) };
        continue;
      }
      expect(info.dtype).toBe('F32');
      const values = await file.readF32(info.name);
      expect(values.length).toBe(info.shape.reduce((a, b) => a * b, 1));
      for (const v of values) {
        sum += v;
        absSum += Math.abs(v);
      }
      count += values.length;
      copy[info.name] = { dtype: info.dtype, shape: info.shape, data: values };
    }
    await file.close();
    expect(integers).toEqual(integerTensors[model] ?? {});
    const [wantCount, wantSum, wantAbsSum] = expected[model];
    expect(count).toBe(wantCount);
    // Summation order differs from numpy's pairwise sum: allow 1e-9 of Σ|x|.
    expect(Math.abs(sum - wantSum)).toBeLessThanOrEqual(1e-9 * wantAbsSum);
    expect(Math.abs(absSum - wantAbsSum)).toBeLessThanOrEqual(1e-9 * wantAbsSum);
    // The reference generator's writer uses the same canonical layout.
    expect(firstDifference(encodeSafetensors(copy, { format: 'pt' }), await readFile(path))).toBe(-1);
  });

  it('reads a big tensor in aligned chunks', async () => {
    const path = join(FIXTURES, 'models/text_encoder_prior/model.safetensors');
    const file = await SafetensorsFile.open(await openFileSource(path));
    const name = 'text_model.embeddings.token_embedding.weight';
    const whole = await file.readRaw(name);
    expect(whole.length).toBe(49408 * 32 * 4);
    const joined = new Uint8Array(whole.length);
    let pieces = 0;
    for await (const { offset, bytes } of file.readChunks(name, 1_000_007)) {
      expect(offset % 16).toBe(0);
      expect(bytes.length).toBeLessThanOrEqual(1_000_000);
      joined.set(bytes, offset);
      pieces++;
    }
    expect(pieces).toBe(Math.ceil(whole.length / 1_000_000));
    expect(firstDifference(joined, whole)).toBe(-1);
    const err = await failure(file.readChunks(name, 15)[Symbol.asyncIterator]().next());
    expect(err.message).toBe('chunk size must be an integer of at least 16 bytes, got 15');
    await file.close();
  });
});

describe('byte sources', () => {
  it('reads tensors stored past 4 GiB in a sparse file', async () => {
    const big = 4_500_000_000;
    const header = new TextEncoder().encode(
      JSON.stringify({
        big: { dtype: 'U8', shape: [big], data_offsets: [0, big] },
        tail: { dtype: 'F32', shape: [4], data_offsets: [big, big + 16] },
      }),
    );
    const path = join(scratch, 'sparse.safetensors');
    const handle = await open(path, 'w');
    const prefix = new Uint8Array(8);
    new DataView(prefix.buffer).setBigUint64(0, BigInt(header.length), true);
    await handle.write(prefix, 0, 8, 0);
    await handle.write(header, 0, header.length, 8);
    await handle.write(bytesOf(Float32Array.of(1, -2, 3.5, 65504)), 0, 16, 8 + header.length + big);
    await handle.close();
    const file = await SafetensorsFile.open(await openFileSource(path));
    expect(file.tensors.get('tail')?.begin).toBe(8 + header.length + big);
    expect([...(await file.readF32('tail'))]).toEqual([1, -2, 3.5, 65504]);
    const bigEnd = file.tensors.get('big')?.end as number;
    expect([...(await file.source.read(bigEnd - 4, 8))]).toEqual([0, 0, 0, 0, 0, 0, 0x80, 0x3f]);
    await file.close();
    await rm(path);
  });

  it('reads over HTTP range requests, and refuses a server without them', async () => {
    const body = encodeSafetensors({ w: { dtype: 'F16', shape: [3], data: Uint16Array.of(0x3c00, 0x4000, 0xc200) } });
    const server = createServer((req, res) => {
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      if (req.url === '/no-ranges' || range === null) {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
        return;
      }
      const [first, last] = [Number(range[1]), Number(range[2])];
      res.writeHead(206, {
        'content-range': `bytes ${first}-${last}/${body.length}`,
        'content-length': last - first + 1,
      });
      res.end(body.subarray(first, last + 1));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const source = await httpSource(`${base}/model.safetensors`);
      expect(source.size).toBe(body.length);
      const file = await SafetensorsFile.open(source);
      expect([...(await file.readF32('w'))]).toEqual([1, 2, -3]);
      const err = await failure(httpSource(`${base}/no-ranges`));
      expect(err.message).toBe(`${base}/no-ranges: expected 206 Partial Content for a range request, got 200 OK`);
    } finally {
      await closeServer(server);
    }
  });

  it('refuses reads outside a source', async () => {
    const source = memorySource('mem', new Uint8Array(10));
    expect((await failure(source.read(8, 4))).message).toBe('mem: read of 4 bytes at offset 8 runs past the end (10 bytes)');
    expect((await failure(source.read(-1, 2))).message).toBe('mem: invalid read of 2 bytes at offset -1');
  });
});

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
}

describe('writeFileAtomic', () => {
  async function* failingMidway(): AsyncGenerator<Uint8Array> {
    yield new Uint8Array(1000).fill(7);
    throw new Error('producer failed');
  }

  it('leaves nothing behind when the writer fails midway', async () => {
    const dir = await mkdtemp(join(scratch, 'atomic-'));
    const path = join(dir, 'out.safetensors');
    expect((await failure(writeFileAtomic(path, failingMidway()))).message).toBe('producer failed');
    expect(await readdir(dir)).toEqual([]);
  });

  it('keeps the old file when replacing it fails, and replaces it whole otherwise', async () => {
    const dir = await mkdtemp(join(scratch, 'atomic-'));
    const path = join(dir, 'out.bin');
    await writeFile(path, 'old');
    await failure(writeFileAtomic(path, failingMidway()));
    expect(await readdir(dir)).toEqual(['out.bin']);
    expect(await readFile(path, 'utf8')).toBe('old');
    await writeFileAtomic(path, [new TextEncoder().encode('new '), new TextEncoder().encode('content')]);
    expect(await readdir(dir)).toEqual(['out.bin']);
    expect(await readFile(path, 'utf8')).toBe('new content');
  });

  it('names the missing folder of the output', async () => {
    const dir = await mkdtemp(join(scratch, 'atomic-'));
    const path = join(dir, 'missing', 'out.bin');
    expect((await failure(writeFileAtomic(path, [new Uint8Array(4)]))).message).toBe(
      `cannot write ${path}: its folder ${join(dir, 'missing')} does not exist`,
    );
  });
});

describe('ShardedSafetensors', () => {
  const shard1 = 'model-00001-of-00002.safetensors';
  const shard2 = 'model-00002-of-00002.safetensors';
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(scratch, 'sharded-'));
    await writeSafetensors(join(dir, shard1), {
      a: { dtype: 'F32', shape: [2], data: Float32Array.of(1, 2) },
      b: { dtype: 'I64', shape: [1], data: BigInt64Array.of(42n) },
    });
    await writeSafetensors(join(dir, shard2), {
      c: { dtype: 'F16', shape: [3], data: Uint16Array.of(0x3c00, 0x4000, 0xc200) },
    });
    await writeFile(join(dir, 'bad.safetensors'), 'abc');
  });

  async function writeIndex(name: string, index: string | object): Promise<string> {
    const path = join(dir, name);
    await writeFile(path, typeof index === 'string' ? index : JSON.stringify(index));
    return path;
  }

  it('looks tensors up across shards', async () => {
    const path = await writeIndex('model.safetensors.index.json', {
      metadata: { total_size: 30 },
      weight_map: { a: shard1, b: shard1, c: shard2 },
    });
    const model = await ShardedSafetensors.open(path);
    expect([...model.tensors.keys()]).toEqual(['a', 'b', 'c']);
    expect(model.tensors.get('c')?.file).toBe(join(dir, shard2));
    expect(model.metadata).toEqual({ total_size: '30' });
    expect([...(await model.readF32('a'))]).toEqual([1, 2]);
    expect(await model.readI64AsNumbers('b')).toEqual([42]);
    expect([...(await model.readF32('c'))]).toEqual([1, 2, -3]);
    expect([...(await model.readF16Bits('c'))]).toEqual([0x3c00, 0x4000, 0xc200]);
    expect((await failure(model.readRaw('d'))).message).toBe(`${path}: tensor "d": no such tensor in this checkpoint`);
    await model.close();
  });

  const brokenIndexes: [string, string | object, () => string][] = [
    [
      'a missing shard file',
      { weight_map: { a: shard1, d: 'model-00003-of-00003.safetensors' } },
      () =>
        'shard "model-00003-of-00003.safetensors" cannot be opened: ENOENT: no such file or directory, ' +
        `open '${join(dir, 'model-00003-of-00003.safetensors')}'`,
    ],
    [
      'a tensor missing from its shard',
      { weight_map: { a: shard2 } },
      () => `tensor "a": weight_map points to shard "${shard2}", which has no such tensor`,
    ],
    ['no weight_map', { metadata: {} }, () => 'weight_map must be a JSON object, got nothing'],
    [
      'a shard outside the folder',
      { weight_map: { a: '../model.safetensors' } },
      () => `tensor "a": weight_map must give a file name in the index's folder, got "../model.safetensors"`,
    ],
    [
      'a duplicate tensor',
      `{"weight_map": {"a": "${shard1}", "a": "${shard2}"}}`,
      () => 'duplicate key "a" in weight_map',
    ],
    ['an index that is not JSON', '{"weight_map": ', () => 'index is not valid JSON'],
  ];

  it.each(brokenIndexes)('rejects %s', async (_title, index, message) => {
    const path = await writeIndex('broken.safetensors.index.json', index);
    const err = await failure(ShardedSafetensors.open(path));
    expect(err).toBeInstanceOf(SafetensorsError);
    expect(err.message).toBe(`${path}: ${message()}`);
  });

  it("reports a corrupt shard with the shard's own name", async () => {
    const path = await writeIndex('corrupt.safetensors.index.json', {
      weight_map: { a: shard1, x: 'bad.safetensors' },
    });
    const err = await failure(ShardedSafetensors.open(path));
    expect(err.message).toBe(
      `${join(dir, 'bad.safetensors')}: file is 3 bytes long, shorter than the 8-byte header length that starts it`,
    );
  });
});

describe('wuerstchen inspect', () => {
  async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
    const out: string[] = [];
    const err: string[] = [];
    const log = vi.spyOn(console, 'log').mockImplementation((line: string) => void out.push(line));
    const error = vi.spyOn(console, 'error').mockImplementation((line: string) => void err.push(line));
    try {
      const code = await main(argv);
      return { code, out: out.join('\n'), err: err.join('\n') };
    } finally {
      log.mockRestore();
      error.mockRestore();
    }
  }

  it('prints every tensor and the metadata', async () => {
    const path = join(scratch, 'small.safetensors');
    await writeSafetensors(
      path,
      {
        alpha: { dtype: 'F32', shape: [2, 3], data: new Float32Array(6) },
        b: { dtype: 'I64', shape: [2], data: new BigInt64Array(2) },
        scalar: { dtype: 'F16', shape: [], data: new Uint16Array(1) },
      },
      { format: 'pt' },
    );
    expect(await run(['inspect', path])).toEqual({
      code: 0,
      out: [
        path,
        '3 tensors, 9 elements',
        '  name    dtype  shape',
        '  alpha   F32    [2, 3]',
        '  b       I64    [2]',
        '  scalar  F16    []',
        'metadata:',
        '  format: pt',
      ].join('\n'),
      err: '',
    });
  });

  it('prints the shard of each tensor of a sharded checkpoint', async () => {
    const dir = await mkdtemp(join(scratch, 'inspect-'));
    const bf16: TensorToWrite = { dtype: 'BF16', shape: [4], data: new Uint16Array(4) };
    await writeSafetensors(join(dir, 'one.safetensors'), { w: bf16 });
    await writeSafetensors(join(dir, 'two.safetensors'), { v: { dtype: 'F32', shape: [1, 1], data: new Float32Array(1) } });
    const path = join(dir, 'model.safetensors.index.json');
    await writeFile(path, JSON.stringify({ weight_map: { w: 'one.safetensors', v: 'two.safetensors' } }));
    expect(await run(['inspect', path])).toEqual({
      code: 0,
      out: [
        path,
        '2 tensors, 5 elements',
        '  name  dtype  shape   shard',
        '  w     BF16   [4]     one.safetensors',
        '  v     F32    [1, 1]  two.safetensors',
        'metadata: (none)',
      ].join('\n'),
      err: '',
    });
  });

  it("exits 1 with the reader's error on one line", async () => {
    const path = join(scratch, 'not-json.safetensors');
    await writeFile(path, withHeader('{"w": nope}'));
    expect(await run(['inspect', path])).toEqual({
      code: 1,
      out: '',
      err: `wuerstchen inspect: ${path}: header is not valid JSON`,
    });
    expect(await run(['inspect'])).toEqual({
      code: 1,
      out: '',
      err: 'wuerstchen inspect: expected one file, got 0; usage: wuerstchen inspect <file.safetensors | model.safetensors.index.json>',
    });
  });
});
