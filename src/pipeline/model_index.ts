/**
 * A diffusers pipeline folder: `model_index.json` naming each component's class, one subfolder per
 * component. A Hub id (`org/name`) is first downloaded into the Hugging Face cache.
 */
import { snapshotDownload, type HubOptions } from '../io/hub.js';
import { tokenizerClasses, type CLIPTokenizer } from '../models/clip/tokenization_clip.js';
import { readTextFile, readTextFileIfExists } from '../platform/text_file.js';
import { DDPMWuerstchenScheduler } from './scheduling_ddpm_wuerstchen.js';

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
  let parsed: unknown;
  try {
    parsed = JSON.parse(await readTextFile(path));
  } catch (err) {
    throw new PipelineConfigError(`${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new PipelineConfigError(`${path}: expected a JSON object`);
  }
  const index = parsed as Record<string, unknown>;
  if (index._class_name !== expectedClass) {
    throw new PipelineConfigError(`${path}: _class_name is ${JSON.stringify(index._class_name)}, expected "${expectedClass}"`);
  }
  return index as ModelIndex;
}

/** A numeric pipeline setting of model_index.json, with diffusers' default when absent. */
export function indexNumber(index: ModelIndex, key: string, fallback: number, dir: string): number {
  const value = index[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new PipelineConfigError(`${dir}/model_index.json: "${key}" must be a positive number, got ${JSON.stringify(value)}`);
  }
  return value;
}

export async function loadTokenizer(dir: string, index: ModelIndex): Promise<CLIPTokenizer> {
  const entry = index.tokenizer;
  const className = Array.isArray(entry) ? entry[1] : 'CLIPTokenizerFast';
  const cls = tokenizerClasses[className as keyof typeof tokenizerClasses];
  if (!cls) {
    throw new PipelineConfigError(
      `${dir}/model_index.json: tokenizer class ${JSON.stringify(className)} is not one of ${Object.keys(tokenizerClasses).join(', ')}`,
    );
  }
  return cls.fromPretrained(`${dir}/tokenizer`);
}

export async function loadScheduler(dir: string): Promise<DDPMWuerstchenScheduler> {
  const path = `${dir}/scheduler/scheduler_config.json`;
  let config: unknown;
  try {
    config = JSON.parse(await readTextFile(path));
  } catch (err) {
    throw new PipelineConfigError(`${path}: ${(err as Error).message}`);
  }
  if (typeof config !== 'object' || config === null) throw new PipelineConfigError(`${path}: expected a JSON object`);
  return DDPMWuerstchenScheduler.fromConfig(config as Record<string, unknown>);
}
