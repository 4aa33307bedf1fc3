/**
 * Checks of a generation request, done before anything is allocated on the GPU. The library and
 * the CLI show the same messages.
 */
export class PipelineInputError extends Error {
  override name = 'PipelineInputError';
}

export function positiveInteger(value: number, name: string): number {
  if (!Number.isInteger(value) || value < 1) throw new PipelineInputError(`${name} must be a positive integer, got ${value}`);
  return value;
}

export function finiteNumber(value: number, name: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new PipelineInputError(`${name} must be a finite number, got ${value}`);
  return value;
}

/** Prompts as a list; negative prompts must match their number, as diffusers requires. */
export function promptList(prompt: string | readonly string[], name = 'prompt'): string[] {
  const list = typeof prompt === 'string' ? [prompt] : [...prompt];
  if (list.length === 0) throw new PipelineInputError(`${name} is an empty list`);
  for (const p of list) if (typeof p !== 'string') throw new PipelineInputError(`${name} must be a string or a list of strings`);
  return list;
}

export function negativePromptList(negative: string | readonly string[] | undefined, prompts: readonly string[]): string[] | undefined {
  if (negative === undefined) return undefined;
  const list = typeof negative === 'string' ? [negative] : [...negative];
  if (list.length !== prompts.length) {
    throw new PipelineInputError(
      `negativePrompt has batch size ${list.length}, but prompt has batch size ${prompts.length}; they must match`,
    );
  }
  return list;
}

/** Custom timesteps: a descending list in [0, 1] of at least two values (the last is where sampling ends). */
export function timestepList(timesteps: readonly number[]): number[] {
  if (timesteps.length < 2) throw new PipelineInputError(`timesteps needs at least two values, got ${timesteps.length}`);
  timesteps.forEach((t, i) => {
    if (!Number.isFinite(t) || t < 0 || t > 1) throw new PipelineInputError(`timesteps[${i}] must be in [0, 1], got ${t}`);
    if (i > 0 && t >= timesteps[i - 1]) throw new PipelineInputError(`timesteps must be strictly descending (timesteps[${i}] = ${t})`);
  });
  return [...timesteps];
}
