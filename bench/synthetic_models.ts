/**
 * The full-size models with random weights: each component's real config and tensor list come from
 * its checkpoint manifest (test/fixtures/manifests/), the values from a SyntheticCheckpoint, loaded
 * through the same WeightLoader path a real file takes. `repeats` keeps only the first few of a
 * model's repeated blocks (renumbering the keys as a smaller config would name them), so quick runs
 * keep every real width, token count and image size at a fraction of the depth.
 */
import { readFile } from 'node:fs/promises';
import { manifestTensors, SyntheticCheckpoint, type TensorSpec } from '../src/io/synthetic_checkpoint.js';
import { parseCLIPTextConfig, type CLIPTextConfig } from '../src/models/clip/configuration_clip.js';
import { CLIPTextModel } from '../src/models/clip/modeling_clip.js';
import { parseWuerstchenDiffNeXtConfig, WuerstchenDiffNeXt, type WuerstchenDiffNeXtConfig } from '../src/models/stage_b/modeling_wuerstchen_diffnext.js';
import { parseWuerstchenPriorConfig, WuerstchenPrior, type WuerstchenPriorConfig } from '../src/models/stage_c/modeling_wuerstchen_prior.js';
import { parsePaellaVQConfig, type PaellaVQConfig } from '../src/models/vqgan/configuration_paella_vq_model.js';
import { PaellaVQModel } from '../src/models/vqgan/modeling_paella_vq_model.js';
import { WeightLoader } from '../src/nn/weight_scope.js';
import { bucketSize } from '../src/runtime/buffer_pool.js';
import type { Runtime } from '../src/runtime/device.js';
import { bytesPerElement, type DType } from '../src/runtime/dtype.js';
import { clipTextFlops, diffNeXtFlops, priorFlops, vqganDecodeFlops } from './flops.js';

/** A model on the device with its inputs, ready to record forwards. */
export interface LoadedComponent {
  /** Records one forward and frees its outputs (the caller syncs). */
  forward(): Promise<void>;
  dispose(): void;
}

export interface SyntheticComponent {
  name: string;
  /** The input size, e.g. "24×24 b2". */
  shape: string;
  /** What a quick run leaves out, e.g. "2 of 32 blocks"; empty at full size. */
  reduced: string;
  /** FLOPs of one forward of the model as loaded. */
  flops: number;
  /** Pool bytes the left-out tensors would add in `dtype` (0 at full size). */
  leftOutBytes(rt: Runtime, dtype: DType): number;
  load(rt: Runtime, dtype: DType): Promise<LoadedComponent>;
}

interface Manifest {
  config: Record<string, unknown>;
  tensors: TensorSpec[];
}

async function readManifest(file: string): Promise<Manifest> {
  const json = JSON.parse(await readFile(new URL(`../test/fixtures/manifests/${file}`, import.meta.url), 'utf8')) as { config: Record<string, unknown> };
  return { config: json.config, tensors: manifestTensors(json) };
}

/** `tensors` renamed by `rename` (null drops a tensor). */
function select(tensors: readonly TensorSpec[], rename: (name: string) => string | null): { kept: TensorSpec[]; dropped: TensorSpec[] } {
  const kept: TensorSpec[] = [];
  const dropped: TensorSpec[] = [];
  for (const t of tensors) {
    const name = rename(t.name);
    if (name === null) dropped.push(t);
    else kept.push({ name, shape: t.shape });
  }
  return { kept, dropped };
}

function poolBytes(rt: Runtime, tensors: readonly TensorSpec[], dtype: DType): number {
  const bytes = bytesPerElement(rt.storageDType(dtype));
  return tensors.reduce((sum, t) => sum + bucketSize(Math.ceil((t.shape.reduce((a, b) => a * b, 1) * bytes) / 4) * 4), 0);
}

/** Random weights as the checkpoint dtype the loader copies without converting. */
function checkpoint(rt: Runtime, tensors: readonly TensorSpec[], dtype: DType, name: string): SyntheticCheckpoint {
  return new SyntheticCheckpoint(tensors, { dtype: rt.storageDType(dtype) === 'f16' ? 'F16' : 'F32', name });
}

const sin = (n: number, scale = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37) * scale);

/** A padded prompt: BOS, `words` tokens, EOS, then padding, with its attention mask. */
function prompt(batch: number, length: number, words: number, config: CLIPTextConfig): { ids: number[][]; mask: number[][] } {
  const eos = config.vocabSize - 1;
  const ids = Array.from({ length: batch }, (_, b) =>
    Array.from({ length }, (_, i) => (i === 0 ? eos - 1 : i <= words ? 320 + ((b * 131 + i * 17) % 40000) : eos)),
  );
  const mask = ids.map((row) => row.map((_, i) => (i <= words + 1 ? 1 : 0)));
  return { ids, mask };
}

/** A model's config and checkpoint tensors, cut down to fewer repeated blocks. */
export interface ReducedModel<C> {
  full: C;
  config: C;
  kept: TensorSpec[];
  dropped: TensorSpec[];
}

/** A CLIP text tower with its first `layers` encoder layers (all when undefined). */
export async function reducedClip(manifestFile: string, layers?: number): Promise<ReducedModel<CLIPTextConfig>> {
  const manifest = await readManifest(manifestFile);
  const full = parseCLIPTextConfig(JSON.stringify(manifest.config), manifestFile);
  const depth = Math.min(layers ?? full.numHiddenLayers, full.numHiddenLayers);
  const tensors = select(manifest.tensors, (n) => {
    const layer = /^text_model\.encoder\.layers\.(\d+)\./.exec(n);
    return layer && Number(layer[1]) >= depth ? null : n;
  });
  return { full, config: { ...full, numHiddenLayers: depth }, ...tensors };
}

export async function clipTextEncoder(
  name: string,
  manifestFile: string,
  layers: number | undefined,
  batch = 2,
  tokens = 77,
): Promise<SyntheticComponent> {
  const { full, config, kept, dropped } = await reducedClip(manifestFile, layers);
  const depth = config.numHiddenLayers;
  return {
    name,
    shape: `${batch}×${tokens} tokens`,
    reduced: depth < full.numHiddenLayers ? `${depth} of ${full.numHiddenLayers} layers` : '',
    flops: clipTextFlops(config, batch, tokens),
    leftOutBytes: (rt, dtype) => poolBytes(rt, dropped, dtype),
    async load(rt, dtype) {
      const loader = new WeightLoader(rt, checkpoint(rt, kept, dtype, name), name, dtype);
      const model = await CLIPTextModel.load(loader, config);
      const { ids, mask } = prompt(batch, tokens, 12, config);
      return {
        async forward() {
          const out = await model.forward(ids, mask);
          out.lastHiddenState.dispose();
          out.poolerOutput.dispose();
        },
        dispose: () => model.dispose(),
      };
    },
  };
}

/** Stage C with its first `depth` (ResBlock, TimestepBlock, AttnBlock) triples. */
export async function reducedPrior(depth?: number): Promise<ReducedModel<WuerstchenPriorConfig>> {
  const manifest = await readManifest('prior.json');
  const full = parseWuerstchenPriorConfig(JSON.stringify(manifest.config), 'prior.json');
  const kept = Math.min(depth ?? full.depth, full.depth);
  const tensors = select(manifest.tensors, (n) => {
    const block = /^blocks\.(\d+)\./.exec(n);
    return block && Number(block[1]) >= 3 * kept ? null : n;
  });
  return { full, config: { ...full, depth: kept }, ...tensors };
}

export async function stageC(depth: number | undefined, batch = 2, size = 24): Promise<SyntheticComponent> {
  const { full, config, ...tensors } = await reducedPrior(depth);
  const kept = config.depth;
  return {
    name: 'stage C (prior)',
    shape: `${size}×${size} b${batch}`,
    reduced: kept < full.depth ? `depth ${kept} of ${full.depth}` : '',
    flops: priorFlops(config, batch, size, size),
    leftOutBytes: (rt, dtype) => poolBytes(rt, tensors.dropped, dtype),
    async load(rt, dtype) {
      const prior = await WuerstchenPrior.fromReader(rt, checkpoint(rt, tensors.kept, dtype, 'prior'), 'prior', config, { dtype });
      const x = rt.upload(sin(batch * config.c_in * size * size), [batch, config.c_in, size, size], dtype, 'x');
      const c = rt.upload(sin(batch * 77 * config.c_cond, 0.5), [batch, 77, config.c_cond], dtype, 'c');
      const r = Float32Array.from({ length: batch }, (_, i) => 0.3 + 0.4 * i);
      return {
        forward: async () => (await prior.forward(x, r, c)).dispose(),
        dispose() {
          x.dispose();
          c.dispose();
          prior.dispose();
        },
      };
    },
  };
}

/**
 * Key renaming for a DiffNeXt with fewer `blocks` per level: down level i holds [DownSample (i > 0),
 * blocks[i] × level_config[i]]; up level i holds [blocks[i] × level_config[i], UpSample (i > 0)].
 */
function diffNeXtRename(full: WuerstchenDiffNeXtConfig, blocks: readonly number[]): (name: string) => string | null {
  const levels = full.c_hidden.length;
  return (name) => {
    const m = /^(down_blocks|up_blocks)\.(\d+)\.(\d+)\.(.*)$/.exec(name);
    if (!m) return name;
    const [, path, levelText, indexText, rest] = m;
    const index = Number(indexText);
    if (path === 'down_blocks') {
      const i = Number(levelText);
      const first = i > 0 ? 1 : 0;
      return index < first + full.level_config[i].length * blocks[i] ? name : null;
    }
    const i = levels - 1 - Number(levelText);
    const perRepeat = full.level_config[i].length;
    if (index < perRepeat * blocks[i]) return name;
    if (i > 0 && index === perRepeat * full.blocks[i]) return `${path}.${levelText}.${perRepeat * blocks[i]}.${rest}`;
    return null;
  };
}

/** Stage B with at most `blocks[i]` repeats of level i's block types. */
export async function reducedDiffNeXt(blocks?: readonly number[]): Promise<ReducedModel<WuerstchenDiffNeXtConfig>> {
  const manifest = await readManifest('decoder.json');
  const full = parseWuerstchenDiffNeXtConfig(JSON.stringify(manifest.config), 'decoder.json');
  const kept = full.blocks.map((b, i) => Math.min(b, blocks?.[i] ?? b));
  return { full, config: { ...full, blocks: kept }, ...select(manifest.tensors, diffNeXtRename(full, kept)) };
}

/** Stage B at `imageSize`² pixels: latents imageSize/4, effnet ⌈imageSize/42.67⌉ (the pipelines' sizes), batch 1 = no guidance. */
export async function stageB(blocks: readonly number[] | undefined, imageSize = 512, batch = 1): Promise<SyntheticComponent> {
  const { full, config, ...tensors } = await reducedDiffNeXt(blocks);
  const kept = config.blocks;
  const latent = imageSize / 4;
  const effnet = Math.ceil(imageSize / (1024 / 24));
  return {
    name: 'stage B (decoder)',
    shape: `${imageSize}² image: ${latent}×${latent} latent, ${effnet}×${effnet} effnet, b${batch}`,
    reduced: kept.some((b, i) => b < full.blocks[i]) ? `blocks [${kept.join(', ')}] of [${full.blocks.join(', ')}]` : '',
    flops: diffNeXtFlops(config, batch, latent, latent),
    leftOutBytes: (rt, dtype) => poolBytes(rt, tensors.dropped, dtype),
    async load(rt, dtype) {
      const model = await WuerstchenDiffNeXt.fromReader(rt, checkpoint(rt, tensors.kept, dtype, 'decoder'), 'decoder', config, { dtype });
      const x = rt.upload(sin(batch * config.c_in * latent * latent), [batch, config.c_in, latent, latent], dtype, 'x');
      const e = rt.upload(sin(batch * config.effnet_embd * effnet * effnet), [batch, config.effnet_embd, effnet, effnet], dtype, 'effnet');
      const clip = rt.upload(sin(batch * 77 * config.clip_embd, 0.5), [batch, 77, config.clip_embd], dtype, 'clip');
      const r = Float32Array.from({ length: batch }, (_, i) => 0.3 + 0.4 * i);
      return {
        forward: async () => (await model.forward(x, r, e, clip)).dispose(),
        dispose() {
          for (const t of [x, e, clip]) t.dispose();
          model.dispose();
        },
      };
    },
  };
}

/** Key renaming for a PaellaVQModel with fewer bottleneck blocks: up_blocks.1..B are the bottleneck. */
function vqRename(full: PaellaVQConfig, bottleneck: number): (name: string) => string | null {
  const dropped = full.bottleneckBlocks - bottleneck;
  return (name) => {
    const m = /^up_blocks\.(\d+)\.(.*)$/.exec(name);
    if (!m) return name;
    const index = Number(m[1]);
    if (index <= bottleneck) return name;
    if (index <= full.bottleneckBlocks) return null;
    return `up_blocks.${index - dropped}.${m[2]}`;
  };
}

/** The VQGAN with its first `bottleneck` bottleneck blocks. */
export async function reducedVqgan(bottleneck?: number): Promise<ReducedModel<PaellaVQConfig>> {
  const manifest = await readManifest('vqgan.json');
  const full = parsePaellaVQConfig(JSON.stringify(manifest.config), 'vqgan.json');
  const kept = Math.min(bottleneck ?? full.bottleneckBlocks, full.bottleneckBlocks);
  return { full, config: { ...full, bottleneckBlocks: kept }, ...select(manifest.tensors, vqRename(full, kept)) };
}

/** VQGAN decode of a `imageSize`² image (latents imageSize/4). */
export async function vqganDecoder(bottleneck: number | undefined, imageSize = 512, batch = 1): Promise<SyntheticComponent> {
  const { full, config, ...tensors } = await reducedVqgan(bottleneck);
  const kept = config.bottleneckBlocks;
  const latent = imageSize / 4;
  return {
    name: 'VQGAN decode',
    shape: `${imageSize}² image: ${latent}×${latent} latent, b${batch}`,
    reduced: kept < full.bottleneckBlocks ? `${kept} of ${full.bottleneckBlocks} bottleneck blocks` : '',
    flops: vqganDecodeFlops(config, batch, latent, latent),
    leftOutBytes: (rt, dtype) => poolBytes(rt, tensors.dropped, dtype),
    async load(rt, dtype) {
      const loader = new WeightLoader(rt, checkpoint(rt, tensors.kept, dtype, 'vqgan'), 'vqgan', dtype);
      const model = await PaellaVQModel.load(loader, config);
      const latents = rt.upload(sin(batch * config.latentChannels * latent * latent), [batch, config.latentChannels, latent, latent], model.dtype, 'latents');
      return {
        forward: async () => (await model.decode(latents)).dispose(),
        dispose() {
          latents.dispose();
          model.dispose();
        },
      };
    },
  };
}
