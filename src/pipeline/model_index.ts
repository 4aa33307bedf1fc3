/**
 * A diffusers pipeline folder: `model_index.json` naming each component's class, one subfolder per
 * component. A Hub id (`org/name`) is first downloaded into the Hugging Face cache.
 */
import { snapshotDownload, type HubOptions } from '../io/hub.js';
import { describe } from '../io/safetensors_format.js';
import { tokenizerClasses, type CLIPTokenizer } from '../models/clip/tokenization_clip.js';
import { readTextFile, readTextFileIfExists } from '../platform/text_file.js';
import { DDPMWuerstchenScheduler, SchedulerConfigError } from './scheduling_ddpm_wuerstchen.js';

export class PipelineConfigError extends Error {
  override name = 'PipelineConfigError';
}

export type ModelIndex = Record<string, unknown> & { _class_name: string };

/** Files a Würstchen pipeline needs: configs, tokenizer files and safetensors weights (no .bin). */
export const PIPELINE_FILES = ['model_index.json', '*/*.json', '*/*.txt', '*/*.safetensors'];

const looksLikeHubId = (s: string) => /^[\w.-]+\/[\w.-]+$/.test(s);

/** A local folder as is; a Hub id downloaded (or found in the cache) and its snapshot folder returned. */
export async function resolvePipelineFolder(source: string, hub: HubOptions = {}): Promise<string> {
  if ((await readTextFileIfExists(`${source}/model_index.json`)) !== undefined) return source;
  if (looksLikeHubId(source)) return snapshotDownload(source, PIPELINE_FILES, hub);
  throw new PipelineConfigError(`${source}: no model_index.json here, and it is not a Hub repo id (org/name)`);
}

export async function readModelIndex(dir: string, expectedClass: string): Promise<ModelIndex> {
  const path = `${dir}/model_index.json`;
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (err) {
    throw new PipelineConfigError(`${path}: ${(err as Error).message}`);
  }
  return parseModelIndex(text, path, expectedClass);
}

/** A JSON object of untrusted text, or a PipelineConfigError naming `path`. */
function parseJsonObject(text: string, path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new PipelineConfigError(`${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PipelineConfigError(`${path}: expected a JSON object`);
  }
  return parsed as Record<string, unknown>;
}

/** The text of a model_index.json (`path` names it in errors), which must be for `expectedClass`. */
export function parseModelIndex(text: string, path: string, expectedClass: string): ModelIndex {
  const index = parseJsonObject(text, path);
  if (index._class_name !== expectedClass) {
    throw new PipelineConfigError(`${path}: _class_name is ${describe(index._class_name)}, expected "${expectedClass}"`);
  }
  return index as ModelIndex;
}

/** A numeric pipeline setting of model_index.json, with diffusers' default when absent. */
export function indexNumber(index: ModelIndex, key: string, fallback: number, dir: string): number {
  const value = index[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new PipelineConfigError(`${dir}/model_index.json: "${key}" must be a positive number, got ${describe(value)}`);
  }
  return value;
}

/** The tokenizer class model_index.json names (`["transformers", "CLIPTokenizerFast"]`), CLIPTokenizerFast when absent. */
export function tokenizerClass(index: ModelIndex, dir: string): (typeof tokenizerClasses)[keyof typeof tokenizerClasses] {
  const entry = index.tokenizer;
  const className = Array.isArray(entry) ? entry[1] : 'CLIPTokenizerFast';
  // An own-property test: a name like "constructor" must not reach Object.prototype.
  if (typeof className !== 'string' || !Object.hasOwn(tokenizerClasses, className)) {
    throw new PipelineConfigError(
      `${dir}/model_index.json: tokenizer class ${describe(className)} is not one of ${Object.keys(tokenizerClasses).join(', ')}`,
    );
  }
  return tokenizerClasses[className as keyof typeof tokenizerClasses];
}

export async function loadTokenizer(dir: string, index: ModelIndex): Promise<CLIPTokenizer> {
  return tokenizerClass(index, dir).fromPretrained(`${dir}/tokenizer`);
}

export async function loadScheduler(dir: string): Promise<DDPMWuerstchenScheduler> {
  const path = `${dir}/scheduler/scheduler_config.json`;
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (err) {
    throw new PipelineConfigError(`${path}: ${(err as Error).message}`);
  }
  return parseSchedulerConfig(text, path);
}

/** The text of a scheduler_config.json; `path` names it in errors. */
export function parseSchedulerConfig(text: string, path: string): DDPMWuerstchenScheduler {
  const config = parseJsonObject(text, path);
  try {
    return DDPMWuerstchenScheduler.fromConfig(config);
  } catch (err) {
    if (err instanceof SchedulerConfigError) throw new PipelineConfigError(`${path}: ${err.message}`);
    throw err;
  }
}
