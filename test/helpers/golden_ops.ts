import { SafetensorsFile } from '../../src/io/safetensors.js';
import { openFileSource } from '../../src/platform/file.js';
import { f16BitsToF32Array, f32ArrayToF16Bits } from '../../src/runtime/dtype.js';

const FIXTURES = new URL('../fixtures/ops/', import.meta.url).pathname;

export interface GoldenTensor {
  data: Float32Array;
  shape: number[];
}

/** Every float tensor of test/fixtures/ops/<name>.safetensors, plus its JSON `params` metadata. */
export async function readGoldenOp(name: string): Promise<{ tensors: Map<string, GoldenTensor>; params: Record<string, unknown> }> {
  const file = await SafetensorsFile.open(await openFileSource(`${FIXTURES}${name}.safetensors`));
  try {
    const tensors = new Map<string, GoldenTensor>();
    for (const [key, info] of file.tensors) tensors.set(key, { data: await file.readF32(key), shape: [...info.shape] });
    const params = file.metadata.params ? (JSON.parse(file.metadata.params) as Record<string, unknown>) : {};
    return { tensors, params };
  } finally {
    await file.close();
  }
}

/** The values an f16 tensor would hold (round to nearest even), as f32. */
export function roundToF16(values: ArrayLike<number>): Float32Array {
  return f16BitsToF32Array(f32ArrayToF16Bits(values));
}

/** Deterministic pseudo-normal values (sum of uniforms from a fixed LCG), mean `mean`, std ≈ `std`. */
export function pseudoNormal(n: number, seed: number, mean = 0, std = 1): Float32Array {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return Float32Array.from({ length: n }, () => mean + std * (next() + next() + next() + next() - 2) * Math.sqrt(3));
}
