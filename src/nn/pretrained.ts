/** A diffusers/transformers model folder: `config.json` beside one safetensors file of weights. */
import { openSafetensors, type TensorReader } from '../io/safetensors.js';
import { readTextFile } from '../platform/text_file.js';
import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import { WeightLoader, type LoadProgressCallback, type WeightScope } from './weight_scope.js';

export interface PretrainedLoadOptions {
  /** Device dtype of the weights (f16: f16 storage, f32 accumulation). */
  dtype?: DType;
  /** Check keys and shapes only (see WeightLoader). */
  dryRun?: boolean;
  /** Called after each tensor is loaded (see WeightLoaderOptions). */
  onProgress?: LoadProgressCallback;
}

/**
 * Parses `<dir>/config.json` with `parseConfig`, opens `<dir>/<weightsFile>` (a path or URL) and
 * hands both to `load`; the file is closed afterwards, whatever happens.
 */
export async function loadPretrainedFolder<C, M>(
  dir: string,
  weightsFile: string,
  parseConfig: (text: string, source: string) => C,
  load: (reader: TensorReader, file: string, config: C) => Promise<M>,
): Promise<M> {
  const configPath = `${dir}/config.json`;
  const config = parseConfig(await readTextFile(configPath), configPath);
  const file = `${dir}/${weightsFile}`;
  const reader = await openSafetensors(file);
  try {
    return await load(reader, file, config);
  } finally {
    await reader.close();
  }
}

/**
 * Builds a model with `load`, which walks `reader`'s state-dict keys from the root scope; fails on
 * missing, mis-shaped or unused keys, freeing whatever was uploaded (see WeightLoader.build).
 */
export function loadFromReader<M>(
  rt: Runtime,
  reader: TensorReader,
  file: string,
  { dtype = 'f32', dryRun = false, onProgress }: PretrainedLoadOptions,
  load: (root: WeightScope) => Promise<M>,
): Promise<M> {
  const loader = new WeightLoader(rt, reader, file, dtype, { dryRun, onProgress });
  return loader.build(() => load(loader.root()));
}
