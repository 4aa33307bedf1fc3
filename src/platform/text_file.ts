/** Whole small text files (tokenizer JSON, prompt lists), read through the byte sources of file.ts. */
import { openFileSource } from './file.js';

export async function readTextFile(path: string): Promise<string> {
  const source = await openFileSource(path);
  try {
    return new TextDecoder().decode(await source.read(0, source.size));
  } finally {
    await source.close();
  }
}

/** Like readTextFile, but a missing file gives undefined: callers probe which of several layouts a folder has. */
export async function readTextFileIfExists(path: string): Promise<string | undefined> {
  try {
    return await readTextFile(path);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw err;
  }
}
