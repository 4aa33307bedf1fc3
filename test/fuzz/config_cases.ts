/**
 * Fuzz targets: every config parser (the four models' config.json, the scheduler's, both pipelines'
 * model_index.json) on mutated documents, and configs that parse checked against the tiny
 * checkpoints with a dry-run load. Documents start from the tiny and full-size configs; fields go
 * missing, change type, turn absurd (negative, huge, 1e400 = Infinity, deep nesting) or the text is
 * cut short or corrupted.
 */
import { readFile } from 'node:fs/promises';
import type { TensorReader } from '../../src/io/safetensors.js';
import { SafetensorsError } from '../../src/io/safetensors.js';
import { CLIPConfigError, parseCLIPTextConfig } from '../../src/models/clip/configuration_clip.js';
import { CLIPTextModel } from '../../src/models/clip/modeling_clip.js';
import {
  ConfigError as DiffNeXtConfigError,
  parseWuerstchenDiffNeXtConfig,
  WuerstchenDiffNeXt,
} from '../../src/models/stage_b/modeling_wuerstchen_diffnext.js';
import { ConfigError as PriorConfigError, parseWuerstchenPriorConfig, WuerstchenPrior } from '../../src/models/stage_c/modeling_wuerstchen_prior.js';
import { PaellaVQConfigError, parsePaellaVQConfig } from '../../src/models/vqgan/configuration_paella_vq_model.js';
import { PaellaVQModel } from '../../src/models/vqgan/modeling_paella_vq_model.js';
import { WeightLoader, WeightError } from '../../src/nn/weight_scope.js';
import { indexNumber, parseModelIndex, parseSchedulerConfig, PipelineConfigError, tokenizerClass } from '../../src/pipeline/model_index.js';
import type { Runtime } from '../../src/runtime/device.js';
import type { FuzzTarget } from './harness.js';
import { mutateNode, toText, type Json } from './json_mutation.js';
import type { Random } from './random.js';

/** What a config file configures, and how its text is parsed (throwing only the kind's typed error). */
export const CONFIG_KINDS = {
  text_encoder: { parse: (text: string) => parseCLIPTextConfig(text, 'text_encoder/config.json'), error: CLIPConfigError },
  prior: { parse: (text: string) => parseWuerstchenPriorConfig(text, 'prior/config.json'), error: PriorConfigError },
  decoder: { parse: (text: string) => parseWuerstchenDiffNeXtConfig(text, 'decoder/config.json'), error: DiffNeXtConfigError },
  vqgan: { parse: (text: string) => parsePaellaVQConfig(text, 'vqgan/config.json'), error: PaellaVQConfigError },
  scheduler: { parse: (text: string) => parseSchedulerConfig(text, 'scheduler/scheduler_config.json'), error: PipelineConfigError },
  prior_index: { parse: (text: string) => readIndex(text, 'WuerstchenPriorPipeline', ['latent_mean', 'latent_std', 'resolution_multiple']), error: PipelineConfigError },
  decoder_index: { parse: (text: string) => readIndex(text, 'WuerstchenDecoderPipeline', ['latent_dim_scale']), error: PipelineConfigError },
};

export type ConfigKind = keyof typeof CONFIG_KINDS;

/** What a pipeline takes from its model_index.json: the class check, its numbers and the tokenizer class. */
function readIndex(text: string, cls: string, numbers: readonly string[]): unknown {
  const index = parseModelIndex(text, 'model_index.json', cls);
  return { numbers: numbers.map((key) => indexNumber(index, key, 1, '.')), tokenizer: tokenizerClass(index, '.').name };
}

export interface ConfigCase {
  kind: ConfigKind;
  text: string;
}

export type ConfigSeeds = Record<ConfigKind, string[]>;

export async function readConfigSeeds(paths: Record<ConfigKind, readonly string[]>): Promise<ConfigSeeds> {
  const entries = await Promise.all(
    Object.entries(paths).map(async ([kind, files]) => [kind, await Promise.all(files.map((f) => readFile(f, 'utf8')))] as const),
  );
  return Object.fromEntries(entries) as ConfigSeeds;
}

function mutateText(random: Random, text: string): string {
  return random.weighted<() => string>([
    [3, () => text.slice(0, random.int(text.length + 1))],
    [2, () => {
      const chars = [...text];
      for (let k = random.between(1, 4); k > 0; k--) chars[random.int(chars.length)] = String.fromCharCode(random.int(128));
      return chars.join('');
    }],
    [1, () => `\ufeff${text}`],
    [1, () => random.pick(['', 'null', '[]', '"config"', '42', '{', '{"a":NaN}', '{"a":Infinity}', '{"a":1}{"b":2}'])],
    [1, () => text.replace(/: *([0-9.]+)/, (_, n: string) => `: ${random.pick([`-${n}`, `${n}e400`, `${n}.5`, `"${n}"`, `[${n}]`])}`)],
  ])();
}

export function generateConfigCase(random: Random, seeds: ConfigSeeds, kinds: readonly ConfigKind[]): ConfigCase {
  const kind = random.pick(kinds);
  let text = random.pick(seeds[kind]);
  if (random.chance(0.8)) {
    const root = JSON.parse(text) as Json;
    for (let k = random.between(1, 3); k > 0; k--) mutateNode(random, root, ['_class_name', 'tokenizer']);
    text = toText(random, root);
  }
  if (random.chance(0.25)) text = mutateText(random, text);
  return { kind, text };
}

export function configTarget(seeds: ConfigSeeds): FuzzTarget<ConfigCase> {
  const kinds = Object.keys(CONFIG_KINDS) as ConfigKind[];
  return {
    name: 'config.json / model_index.json parsers',
    generate: (random) => generateConfigCase(random, seeds, kinds),
    run: (c) => CONFIG_KINDS[c.kind].parse(c.text),
    isTypedError: (err) => Object.values(CONFIG_KINDS).some((k) => err instanceof k.error),
    describe: (c) => `${c.kind}: ${c.text.slice(0, 300)}`,
    timeBoundMs: 1000,
  };
}

/** The tiny checkpoints a parsed config is walked over. */
export type CheckpointReaders = Record<'text_encoder' | 'prior' | 'decoder' | 'vqgan', TensorReader>;

/** Parses `c` and, when that succeeds, dry-runs its model over the matching checkpoint. */
async function dryRun(rt: Runtime, readers: CheckpointReaders, c: ConfigCase): Promise<unknown> {
  const options = { dryRun: true } as const;
  const file = `${c.kind} checkpoint`;
  switch (c.kind) {
    case 'text_encoder':
      return (await CLIPTextModel.load(new WeightLoader(rt, readers.text_encoder, file, 'f32', options), parseCLIPTextConfig(c.text, file))).dispose();
    case 'prior':
      return (await WuerstchenPrior.fromReader(rt, readers.prior, file, parseWuerstchenPriorConfig(c.text, file), options)).dispose();
    case 'decoder':
      return (await WuerstchenDiffNeXt.fromReader(rt, readers.decoder, file, parseWuerstchenDiffNeXtConfig(c.text, file), options)).dispose();
    case 'vqgan':
      return (await PaellaVQModel.load(new WeightLoader(rt, readers.vqgan, file, 'f32', options), parsePaellaVQConfig(c.text, file))).dispose();
    default:
      throw new Error(`no checkpoint for ${c.kind}`);
  }
}

/** Mutated model configs against the real (tiny) checkpoints: a result only when they still match. */
export function configCheckpointTarget(rt: Runtime, seeds: ConfigSeeds, readers: CheckpointReaders): FuzzTarget<ConfigCase> {
  const kinds: ConfigKind[] = ['text_encoder', 'prior', 'decoder', 'vqgan'];
  return {
    name: 'model configs against their checkpoints (dry-run load)',
    generate: (random) => generateConfigCase(random, seeds, kinds),
    run: (c) => dryRun(rt, readers, c),
    isTypedError: (err) => err instanceof WeightError || err instanceof SafetensorsError || kinds.some((k) => err instanceof CONFIG_KINDS[k].error),
    describe: (c) => `${c.kind}: ${c.text.slice(0, 300)}`,
    timeBoundMs: 2000,
  };
}
