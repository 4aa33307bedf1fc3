import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { SafetensorsFile } from '../src/io/safetensors.js';
import { fmaF32 } from '../src/pipeline/avx_mathfun.js';
import { TorchGenerator, randnTensor } from '../src/pipeline/torch_generator.js';
import { openFileSource } from '../src/platform/file.js';

// Golden streams from torch 1.13 CPU (../shared/golden/rng/, README "rng/"); compared bit for bit.
const FIXTURES = fileURLToPath(new URL('./fixtures/rng/', import.meta.url));
const SEEDS = [0, 1, 42, 123456789, 2147483647];

async function openGolden(file: string): Promise<SafetensorsFile> {
  return SafetensorsFile.open(await openFileSource(FIXTURES + file));
}

/** Tolerance 0 ulp: the float32 bit patterns must be identical. */
function expectBitExact(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  let mismatches = 0;
  let first = -1;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) {
      mismatches++;
      if (first < 0) first = i;
    }
  }
  if (mismatches > 0) {
    throw new Error(
      `${what}: ${mismatches}/${a.length} values differ; first at index ${first}: got ${actual[first]}, expected ${expected[first]}`,
    );
  }
}

/** `manual_seed.randn_2x16x24x24` → { op: 'randn', shape: [2, 16, 24, 24] } */
function parseFreshName(name: string): { op: 'randn' | 'rand'; shape: number[] } {
  const match = /^manual_seed\.(randn|rand)_([\dx]+)$/.exec(name);
  if (!match) throw new Error(`unexpected tensor name ${name}`);
  return { op: match[1] as 'randn' | 'rand', shape: match[2].split('x').map(Number) };
}

describe.each(SEEDS)('seed %i', (seed) => {
  let golden: SafetensorsFile;
  beforeAll(async () => {
    golden = await openGolden(`seed_${seed}.safetensors`);
  });
  afterAll(() => golden.close());

  test('torch.manual_seed(s) then one torch.randn / torch.rand per tensor', async () => {
    expect(golden.metadata.seed).toBe(String(seed));
    const names = [...golden.tensors.keys()].filter((name) => name.startsWith('manual_seed.'));
    expect(names.length).toBe(10);
    for (const name of names) {
      const { op, shape } = parseFreshName(name);
      const generator = new TorchGenerator(seed);
      const actual = op === 'randn' ? generator.randn(shape) : generator.rand(shape);
      expectBitExact(actual, await golden.readF32(name), name);
    }
  });

  test('consecutive torch.randn calls on one torch.Generator().manual_seed(s)', async () => {
    const calls = JSON.parse(golden.metadata.generator_calls) as { index: number; shape: number[]; tensor: string }[];
    expect(calls.map((c) => c.index)).toEqual(calls.map((_, i) => i));
    const generator = new TorchGenerator().manualSeed(seed);
    for (const call of calls) {
      expectBitExact(generator.randn(call.shape), await golden.readF32(call.tensor), call.tensor);
    }
  });
});

describe('TorchGenerator', () => {
  test('one large tensor (1x4x256x256, seed 42)', async () => {
    const golden = await openGolden('large_seed_42_1x4x256x256.safetensors');
    try {
      const shape = [1, 4, 256, 256];
      expectBitExact(new TorchGenerator(42).randn(shape), await golden.readF32('manual_seed.randn_1x4x256x256'), 'randn');
    } finally {
      await golden.close();
    }
  });

  test('manualSeed restarts the stream and drops the cached normal', async () => {
    const golden = await openGolden('seed_42.safetensors');
    try {
      const generator = new TorchGenerator(42);
      generator.randn([7]); // 7 scalar normals leave the 8th Box–Muller value cached
      generator.manualSeed(42);
      expectBitExact(generator.randn([1]), await golden.readF32('manual_seed.randn_1'), 'randn_1 after reseed');
    } finally {
      await golden.close();
    }
  });

  test('seeds alias modulo 2^32, as in torch', async () => {
    const golden = await openGolden('seed_42.safetensors');
    try {
      const generator = new TorchGenerator(2n ** 32n + 42n);
      expect(generator.initialSeed()).toBe(2n ** 32n + 42n);
      expectBitExact(generator.randn([16]), await golden.readF32('manual_seed.randn_16'), 'randn_16');
    } finally {
      await golden.close();
    }
  });

  test('rejects a seed that is not an integer', () => {
    expect(() => new TorchGenerator(1.5)).toThrow('seed must be an integer (a bigint above 2^53), got 1.5');
  });
});

describe('randnTensor', () => {
  const item = [2, 16, 24, 24];
  const goldenItem = async (seed: number): Promise<Float32Array> => {
    const golden = await openGolden(`seed_${seed}.safetensors`);
    try {
      return await golden.readF32('manual_seed.randn_2x16x24x24');
    } finally {
      await golden.close();
    }
  };

  test('one generator draws the whole tensor; a list of one acts as that generator', async () => {
    const expected = await goldenItem(42);
    expectBitExact(randnTensor(item, new TorchGenerator(42)).data, expected, 'single generator');
    expectBitExact(randnTensor(item, [new TorchGenerator(42)]).data, expected, 'list of one');
  });

  test('a list draws batch item i from generator i', async () => {
    const seeds = [42, 0, 1];
    const tensor = randnTensor([seeds.length, ...item], seeds.map((s) => new TorchGenerator(s)));
    expect(tensor.shape).toEqual([3, ...item]);
    const itemSize = tensor.data.length / seeds.length;
    for (const [i, seed] of seeds.entries()) {
      expectBitExact(tensor.data.subarray(i * itemSize, (i + 1) * itemSize), await goldenItem(seed), `item ${i}`);
    }
  });

  test('a list must hold one generator per batch item', () => {
    const generators = [1, 2, 3].map((s) => new TorchGenerator(s));
    expect(() => randnTensor([2, 4], generators)).toThrow('randnTensor: got 3 generators for a batch of 2');
  });
});

describe('fmaF32', () => {
  test('rounds once where float64 then float32 rounding would err', () => {
    // a·b = 2^-24 + 2^-60 exactly, so 1 + a·b lies just above the float32 midpoint 1 + 2^-24;
    // rounded to float64 first it lands on the midpoint and ties to 1.
    const a = 2 ** -24 * (1 + 2 ** -12);
    const b = 1 - 2 ** -12 + 2 ** -24;
    expect(Math.fround(a * b + 1)).toBe(1);
    expect(fmaF32(a, b, 1)).toBe(1 + 2 ** -23);
    expect(fmaF32(-a, b, -1)).toBe(-(1 + 2 ** -23));
  });
});
