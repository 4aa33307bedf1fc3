/**
 * Whole small text files (configs, tokenizer JSON, prompt lists): local paths through the byte sources
 * of file.ts, http(s) URLs with one plain GET (any static server or the Hub's resolve URLs).
 */
import { isUrl, openFileSource } from './file.js';

export async function readTextFile(path: string): Promise<string> {
  if (isUrl(path)) {
    const text = await fetchTextIfExists(path);
    if (text === undefined) throw new Error(`${path}: 404 Not Found`);
    return text;
  }
  const source = await openFileSource(path);
  try {
    return new TextDecoder().decode(await source.read(0, source.size));
  } finally {
    await source.close();
  }
}

/** Like readTextFile, but a missing file gives undefined: callers probe which of several layouts a folder has. */
export async function readTextFileIfExists(path: string): Promise<string | undefined> {
  if (isUrl(path)) return fetchTextIfExists(path);
  try {
    return await readTextFile(path);
  } catch (err) {
    if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function fetchTextIfExists(url: string): Promise<string | undefined> {
  const response = await fetch(url);
  if (response.status === 404) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`${url}: ${response.status} ${response.statusText}`);
  }
  return response.text();
}
