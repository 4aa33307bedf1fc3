/**
 * Checks of a generation request, done before anything is allocated on the GPU. The library and
 * the CLI show the same messages.
 */
import type { DType } from '../runtime/dtype.js';

export class PipelineInputError extends Error {
  override name = 'PipelineInputError';
}

export function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new PipelineInputError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/** More denoising steps than this is a mistake (a schedule of 10⁹ steps would take 4 GB before the first). */
export const MAX_INFERENCE_STEPS = 10_000;

export function stepCount(value: number, name: string): number {
  positiveInteger(value, name);
  if (value > MAX_INFERENCE_STEPS) throw new PipelineInputError(`${name} must be at most ${MAX_INFERENCE_STEPS}, got ${value}`);
  return value;
}

/** The device dtypes a pipeline can run in. */
export function dtypeOption(value: unknown): DType {
  if (value !== 'f32' && value !== 'f16') throw new PipelineInputError(`dtype must be 'f32' or 'f16', got ${JSON.stringify(value)}`);
  return value;
}

export function finiteNumber(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new PipelineInputError(`${name} must be a finite number, got ${value}`);
  return value;
}

/** A string or a list of strings, as a list (JavaScript callers may pass anything). */
function stringList(value: unknown, name: string): string[] {
  const list = typeof value === 'string' ? [value] : Array.isArray(value) ? [...value] : undefined;
  if (list === undefined || list.some((p) => typeof p !== 'string')) {
    throw new PipelineInputError(`${name} must be a string or a list of strings`);
  }
  return list;
}

/** Prompts as a list; negative prompts must match their number, as diffusers requires. */
export function promptList(prompt: string | readonly string[], name = 'prompt'): string[] {
  const list = stringList(prompt, name);
  if (list.length === 0) throw new PipelineInputError(`${name} is an empty list`);
  return list;
}

export function negativePromptList(negative: string | readonly string[] | undefined, prompts: readonly string[]): string[] | undefined {
  if (negative === undefined) return undefined;
  const list = stringList(negative, 'negativePrompt');
  if (list.length !== prompts.length) {
    throw new PipelineInputError(
      `negativePrompt has batch size ${list.length}, but prompt has batch size ${prompts.length}; they must match`,
    );
  }
  return list;
}

/** Custom timesteps: a descending list in [0, 1] of at least two values (the last is where sampling ends). */
export function timestepList(timesteps: readonly number[]): number[] {
  if (!Array.isArray(timesteps)) throw new PipelineInputError('timesteps must be a list of numbers');
  if (timesteps.length < 2) throw new PipelineInputError(`timesteps needs at least two values, got ${timesteps.length}`);
  timesteps.forEach((t, i) => {
    if (!Number.isFinite(t) || t < 0 || t > 1) throw new PipelineInputError(`timesteps[${i}] must be in [0, 1], got ${t}`);
    if (i > 0 && t >= timesteps[i - 1]) throw new PipelineInputError(`timesteps must be strictly descending (timesteps[${i}] = ${t})`);
  });
  return [...timesteps];
}
