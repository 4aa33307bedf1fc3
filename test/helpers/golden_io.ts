/** Golden io files (../shared/golden/io/*) on the host, and checks of model outputs against them. */
import { expect } from 'vitest';
import { openSafetensors } from '../../src/io/safetensors.js';
import { Capture } from '../../src/nn/capture.js';
import type { ForwardComponent, ForwardContext, NamedTensor } from '../../src/nn/forward_component.js';

/** Every tensor of a safetensors file: floats as f32, I64 (token ids, masks, VQ indices) as numbers tagged 'I64'. */
export async function readHostTensors(path: string): Promise<Map<string, NamedTensor>> {
  const reader = await openSafetensors(path);
  try {
    const out = new Map<string, NamedTensor>();
    for (const [name, info] of reader.tensors) {
      const shape = [...info.shape];
      out.set(
        name,
        info.dtype === 'I64'
          ? { shape, data: Float32Array.from(await reader.readI64AsNumbers(name)), dtype: 'I64' }
          : { shape, data: await reader.readF32(name) },
      );
    }
    return out;
  } finally {
    await reader.close();
  }
}

export interface GoldenIo {
  /** The `in.*` tensors the model runs on. */
  inputs: Map<string, NamedTensor>;
  /** Every other tensor: the outputs and the captured `act.*` module outputs. */
  expected: Map<string, NamedTensor>;
}

export async function readGoldenIo(path: string): Promise<GoldenIo> {
  const golden: GoldenIo = { inputs: new Map(), expected: new Map() };
  for (const [name, t] of await readHostTensors(path)) (name.startsWith('in.') ? golden.inputs : golden.expected).set(name, t);
  return golden;
}

/** Runs a component as `wuerstchen forward` does: its outputs plus, with a capture, the recorded module outputs. */
export async function runForward(
  component: ForwardComponent,
  ctx: Omit<ForwardContext, 'capture'>,
  withCapture: boolean,
): Promise<Map<string, NamedTensor>> {
  const capture = withCapture ? new Capture(ctx.rt) : undefined;
  const outputs = await component.run({ ...ctx, capture });
  if (capture) for (const [name, t] of await capture.read()) outputs.set(name, t);
  return outputs;
}

/** Entries `start` .. `start + count` along the batch (leading) dimension. */
export function batchSlice(t: NamedTensor, start: number, count: number): NamedTensor {
  const per = t.data.length / t.shape[0];
  return { ...t, shape: [count, ...t.shape.slice(1)], data: t.data.slice(start * per, (start + count) * per) };
}

export function nmseAndCosine(actual: ArrayLike<number>, expected: ArrayLike<number>): { nmse: number; cosine: number } {
  let err = 0;
  let ref = 0;
  let dot = 0;
  let aa = 0;
  for (let i = 0; i < expected.length; i++) {
    err += (actual[i] - expected[i]) ** 2;
    ref += expected[i] ** 2;
    dot += actual[i] * expected[i];
    aa += actual[i] ** 2;
  }
  return { nmse: err / ref, cosine: dot / Math.sqrt(aa * ref) };
}

/** STYLE.md's criterion for a model run in f16: NMSE against the reference and cosine similarity. */
export interface NmseCosineBounds {
  maxNmse: number;
  minCosine: number;
}

export function expectNmseCosine(actual: ArrayLike<number>, expected: ArrayLike<number>, bounds: NmseCosineBounds, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const { nmse, cosine } = nmseAndCosine(actual, expected);
  expect(nmse, `${what}: NMSE`).toBeLessThanOrEqual(bounds.maxNmse);
  expect(cosine, `${what}: cosine`).toBeGreaterThanOrEqual(bounds.minCosine);
}

/** How a test compares float values with the golden; `what` names the tensor in the failure. */
export type ValuesCheck = (actual: Float32Array, expected: Float32Array, what: string) => void;

/** `actual` is produced with the golden's shape; I64 tensors (indices) equal it exactly, float values pass `check`. */
export function expectMatchesGolden(actual: NamedTensor | undefined, expected: NamedTensor, what: string, check: ValuesCheck): void {
  expect(actual, `${what}: not produced`).toBeDefined();
  expect(actual!.shape, `${what}: shape`).toEqual(expected.shape);
  if (expected.dtype === 'I64') {
    expect(actual!.dtype, `${what}: dtype`).toBe('I64');
    expect(Array.from(actual!.data), what).toEqual(Array.from(expected.data));
  } else {
    check(actual!.data, expected.data, what);
  }
}

/** expectMatchesGolden for each of `names` (every golden tensor by default), each named by its key. */
export function expectAllMatchGolden(
  actual: ReadonlyMap<string, NamedTensor>,
  golden: ReadonlyMap<string, NamedTensor>,
  check: ValuesCheck,
  names: Iterable<string> = golden.keys(),
): void {
  for (const name of names) expectMatchesGolden(actual.get(name), golden.get(name)!, name, check);
}
