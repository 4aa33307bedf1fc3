/** A diffusers/transformers model folder: `config.json` beside one safetensors file of weights. */
import { openSafetensors, type TensorReader } from '../io/safetensors.js';
import { readTextFile } from '../platform/text_file.js';

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
