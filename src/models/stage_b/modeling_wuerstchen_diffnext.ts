// Mirrors diffusers v0.21.0 src/diffusers/pipelines/wuerstchen/modeling_wuerstchen_diffnext.py
// (WuerstchenDiffNeXt, Stage B, and ResBlockStageB): the U-Net that denoises the 4-channel VQGAN
// latents conditioned on the Stage C image embedding ("effnet") and the CLIP text embedding.
// Activations are NHWC [B, H, W, C]; the public forward takes and returns NCHW like PyTorch.
import { loadFromReader, loadPretrainedFolder, type PretrainedLoadOptions } from '../../nn/pretrained.js';
import type { TensorReader } from '../../io/safetensors.js';
import { describe } from '../../io/safetensors_format.js';
import type { Capture } from '../../nn/capture.js';
import type { WeightScope } from '../../nn/weight_scope.js';
import { conv2d } from '../../ops/conv2d.js';
import { convTranspose2d, convTranspose2dWeightToTapMajor } from '../../ops/conv_transpose2d.js';
import { diffNeXtOutput } from '../../ops/diffnext_output.js';
import { concatChannels } from '../../ops/elementwise.js';
import { interpolateBicubicAA } from '../../ops/interpolate.js';
import { nchwToNhwc, pixelShuffle, pixelUnshuffle } from '../../ops/shuffle.js';
import type { Runtime } from '../../runtime/device.js';
import type { Tensor } from '../../runtime/tensor.js';
import {
  AttnBlock,
  Linear,
  loadTapMajorConvWeight,
  ResBlockBase,
  TimestepBlock,
  WuerstchenLayerNorm,
} from '../common/modeling_wuerstchen_common.js';
import { genREmbedding } from '../common/r_embedding.js';

/** `decoder/config.json`; missing keys take the defaults of WuerstchenDiffNeXt.__init__. */
export interface WuerstchenDiffNeXtConfig {
  c_in: number;
  c_out: number;
  c_r: number;
  patch_size: number;
  c_cond: number;
  c_hidden: number[];
  /** Heads of each level's AttnBlocks (-1 on levels without 'A'). */
  nhead: number[];
  /** Repeats of each level's `level_config` string. */
  blocks: number[];
  /** Per level, the block types of one repeat: 'C' ResBlockStageB, 'T' TimestepBlock, 'A' AttnBlock. */
  level_config: string[];
  inject_effnet: boolean[];
  effnet_embd: number;
  clip_embd: number;
  kernel_size: number;
  /** Training only: dropout is the identity at inference. */
  dropout: number | number[];
}

const DEFAULT_CONFIG: WuerstchenDiffNeXtConfig = {
  c_in: 4,
  c_out: 4,
  c_r: 64,
  patch_size: 2,
  c_cond: 1024,
  c_hidden: [320, 640, 1280, 1280],
  nhead: [-1, 10, 20, 20],
  blocks: [4, 4, 14, 4],
  level_config: ['CT', 'CTA', 'CTA', 'CTA'],
  inject_effnet: [false, true, true, true],
  effnet_embd: 16,
  clip_embd: 1024,
  kernel_size: 3,
  dropout: 0.1,
};
const INTEGER_KEYS = ['c_in', 'c_out', 'c_r', 'patch_size', 'c_cond', 'effnet_embd', 'clip_embd', 'kernel_size'] as const;
const BLOCK_TYPES = 'CTA';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseWuerstchenDiffNeXtConfig(text: string, source: string): WuerstchenDiffNeXtConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`${source}: expected a JSON object`);
  const raw = json as Record<string, unknown>;
  if (raw._class_name !== undefined && raw._class_name !== 'WuerstchenDiffNeXt') {
    throw new ConfigError(`${source}: _class_name is ${describe(raw._class_name)}, expected "WuerstchenDiffNeXt"`);
  }
  const fail = (key: string, what: string): never => {
    throw new ConfigError(`${source}: "${key}" must be ${what}, got ${describe(raw[key])}`);
  };
  const isCount = (v: unknown, min: number): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= min;
  const config: WuerstchenDiffNeXtConfig = { ...DEFAULT_CONFIG };
  for (const key of INTEGER_KEYS) {
    const value = raw[key] ?? DEFAULT_CONFIG[key];
    if (!isCount(value, 1)) fail(key, 'a positive integer');
    config[key] = value as number;
  }
  // Even kernels would change the spatial size (padding is kernel_size // 2) and break the residual.
  if (config.kernel_size % 2 === 0) fail('kernel_size', 'odd');
  const list = <T>(key: keyof WuerstchenDiffNeXtConfig, what: string, valid: (v: unknown) => v is T): T[] => {
    const value = raw[key] ?? DEFAULT_CONFIG[key];
    if (!Array.isArray(value) || value.length === 0 || !value.every(valid)) fail(key, `a non-empty list of ${what}`);
    return value as T[];
  };
  config.c_hidden = list('c_hidden', 'positive integers', (v): v is number => isCount(v, 1));
  config.nhead = list('nhead', 'integers', (v): v is number => isCount(v, -Infinity));
  config.blocks = list('blocks', 'non-negative integers', (v): v is number => isCount(v, 0));
  config.level_config = list(
    'level_config',
    `strings of the block types ${BLOCK_TYPES.split('').join(', ')}`,
    (v): v is string => typeof v === 'string' && [...v].every((t) => BLOCK_TYPES.includes(t)),
  );
  config.inject_effnet = list('inject_effnet', 'booleans', (v): v is boolean => typeof v === 'boolean');
  const levels = config.c_hidden.length;
  for (const key of ['nhead', 'blocks', 'level_config', 'inject_effnet'] as const) {
    if (config[key].length !== levels) fail(key, `a list of ${levels} entries like "c_hidden"`);
  }
  config.level_config.forEach((types, i) => {
    const [c, heads] = [config.c_hidden[i], config.nhead[i]];
    if (types.includes('A') && !(heads >= 1 && c % heads === 0)) {
      throw new ConfigError(`${source}: level ${i} has attention blocks, but nhead ${heads} does not divide c_hidden ${c}`);
    }
  });
  const dropout = raw.dropout ?? DEFAULT_CONFIG.dropout;
  if (typeof dropout !== 'number' && !(Array.isArray(dropout) && dropout.every((d) => typeof d === 'number'))) {
    fail('dropout', 'a number or a list of numbers');
  }
  config.dropout = dropout as number | number[];
  return config;
}

/**
 * ConvNeXt-style block of Stage B: depthwise conv → LayerNorm → [x, x_skip] channel concat →
 * Linear(c + c_skip, 4c) → GELU → GRN → (Dropout) → Linear(4c, c), plus the input. Unlike the
 * common ResBlock, the skip joins after the norm.
 */
export class ResBlockStageB extends ResBlockBase {
  static async load(scope: WeightScope, c: number, cSkip: number, kernelSize: number): Promise<ResBlockStageB> {
    return new ResBlockStageB(...(await ResBlockBase.loadArgs(scope, c, c + cSkip, kernelSize)));
  }

  /** `x` NHWC [B, H, W, c]; `xSkip` NHWC [B, H, W, c_skip] when the block was built with c_skip > 0. */
  forward(rt: Runtime, x: Tensor, xSkip: Tensor | undefined, capture?: Capture): Tensor {
    let h = this.depthwiseNorm(rt, x, capture);
    if (xSkip) {
      capture?.recordInput(this.path, 'x_skip', xSkip, 'nhwc');
      h = concatChannels(rt, [h, xSkip]);
    }
    return this.channelwiseResidual(rt, h, x, capture);
  }
}

/** A level's entry: Sequential(WuerstchenLayerNorm, Conv2d(k=2, s=2)). */
class DownSample {
  readonly norm = new WuerstchenLayerNorm(1e-6);

  constructor(
    readonly path: string,
    /** Tap-major [2, 2, Cout, Cin]. */
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}

  static async load(scope: WeightScope, cIn: number, cOut: number): Promise<DownSample> {
    const conv = scope.pp(1);
    return new DownSample(scope.prefix, await loadTapMajorConvWeight(conv, [cOut, cIn, 2, 2]), await conv.tensor('bias', [cOut]));
  }

  forward(rt: Runtime, x: Tensor, capture?: Capture): Tensor {
    const normed = this.norm.forward(rt, x);
    capture?.record(`${this.path}.0`, normed, 'nhwc');
    const out = conv2d(rt, normed, this.weight, this.bias, { stride: 2 });
    capture?.record(`${this.path}.1`, out, 'nhwc');
    return out;
  }

  parameters(): Tensor[] {
    return [this.weight, this.bias];
  }
}

/** A level's exit on the way up: Sequential(WuerstchenLayerNorm, ConvTranspose2d(k=2, s=2)). */
class UpSample {
  readonly norm = new WuerstchenLayerNorm(1e-6);

  constructor(
    readonly path: string,
    /** Tap-major [2, 2, Cout, Cin] (see conv_transpose2d.ts). */
    readonly weight: Tensor,
    readonly bias: Tensor,
  ) {}

  static async load(scope: WeightScope, cIn: number, cOut: number): Promise<UpSample> {
    const conv = scope.pp(1);
    const shape = [cIn, cOut, 2, 2];
    const host = await conv.host('weight', shape);
    // A dry run hands back a one-value stand-in with nothing to reorder.
    const data = conv.loader.options.dryRun ? host : convTranspose2dWeightToTapMajor(host, shape);
    return new UpSample(scope.prefix, conv.upload(data, [2, 2, cOut, cIn], 'weight'), await conv.tensor('bias', [cOut]));
  }

  forward(rt: Runtime, x: Tensor, capture?: Capture): Tensor {
    const normed = this.norm.forward(rt, x);
    capture?.record(`${this.path}.0`, normed, 'nhwc');
    const out = convTranspose2d(rt, normed, this.weight, this.bias, { stride: 2 });
    capture?.record(`${this.path}.1`, out, 'nhwc');
    return out;
  }

  parameters(): Tensor[] {
    return [this.weight, this.bias];
  }
}

type Block = ResBlockStageB | TimestepBlock | AttnBlock | DownSample | UpSample;

/** Conditioning shared by every block of one forward call. */
interface Conditioning {
  rEmbed: Tensor;
  clip: Tensor;
  effnet: EffnetResizer;
  capture?: Capture;
}

/**
 * `interpolate(effnet.float(), size, mode='bicubic', antialias=True, align_corners=True)` per level
 * size, computed once per size: the down and up paths ask for the same sizes.
 */
class EffnetResizer {
  private readonly resized = new Map<string, Tensor>();

  constructor(
    readonly rt: Runtime,
    /** NHWC [B, h, w, effnet_embd]. */
    readonly effnet: Tensor,
  ) {}

  at(height: number, width: number): Tensor {
    const key = `${height}x${width}`;
    let t = this.resized.get(key);
    if (!t) {
      t = interpolateBicubicAA(this.rt, this.effnet, height, width);
      this.resized.set(key, t);
    }
    return t;
  }

  dispose(): void {
    for (const t of this.resized.values()) t.dispose();
    this.effnet.dispose();
  }
}

/** The noise prediction's `(x_in − a) / (sigmoid(b)·(1 − 2·eps) + eps)` as the pipelines call it (eps default). */
const OUTPUT_EPS = 1e-3;

export class WuerstchenDiffNeXt {
  readonly seqNorm = new WuerstchenLayerNorm(1e-6);
  readonly embeddingNorm = new WuerstchenLayerNorm(1e-6);
  readonly clfNorm = new WuerstchenLayerNorm(1e-6);

  private constructor(
    readonly rt: Runtime,
    readonly config: WuerstchenDiffNeXtConfig,
    readonly clipMapper: Linear,
    /** One per level down, then one per level up (deepest first); null where inject_effnet is false. */
    readonly effnetMappers: readonly (Linear | null)[],
    /** embedding.1, the 1×1 conv after the pixel-unshuffle. */
    readonly embedding1: Linear,
    /** down_blocks[i]: level i from the top, its DownSample first for i > 0. */
    readonly downBlocks: readonly (readonly Block[])[],
    /** up_blocks[i]: level L−1−i, its UpSample last for levels above 0. */
    readonly upBlocks: readonly (readonly Block[])[],
    /** clf.1, the 1×1 conv before the pixel-shuffle. */
    readonly clf1: Linear,
  ) {}

  /** Loads `<dir>/config.json` and `<dir>/diffusion_pytorch_model.safetensors` (a diffusers `decoder/` folder). */
  static fromPretrained(rt: Runtime, dir: string, options: PretrainedLoadOptions = {}): Promise<WuerstchenDiffNeXt> {
    return loadPretrainedFolder(dir, 'diffusion_pytorch_model.safetensors', parseWuerstchenDiffNeXtConfig, (reader, file, config) =>
      WuerstchenDiffNeXt.fromReader(rt, reader, file, config, options),
    );
  }

  /** Loads every tensor of `reader` by its state-dict key; fails on missing, mis-shaped or unused keys. */
  static fromReader(
    rt: Runtime,
    reader: TensorReader,
    file: string,
    config: WuerstchenDiffNeXtConfig,
    options: PretrainedLoadOptions = {},
  ): Promise<WuerstchenDiffNeXt> {
    return loadFromReader(rt, reader, file, options, (root) => WuerstchenDiffNeXt.load(rt, root, config));
  }

  private static async load(rt: Runtime, root: WeightScope, config: WuerstchenDiffNeXtConfig): Promise<WuerstchenDiffNeXt> {
    const { c_in, c_out, c_r, patch_size, c_cond, c_hidden, nhead, blocks, level_config, inject_effnet, effnet_embd, clip_embd } = config;
    const levels = c_hidden.length;
    const getBlock = (scope: WeightScope, type: string, c: number, heads: number, cSkip: number): Promise<Block> => {
      if (type === 'C') return ResBlockStageB.load(scope, c, cSkip, config.kernel_size);
      if (type === 'A') return AttnBlock.load(scope, c, c_cond, heads, true);
      return TimestepBlock.load(scope, c, c_r);
    };

    const effnetMappers: (Linear | null)[] = [];
    for (const [i, inject] of [...inject_effnet, ...[...inject_effnet].reverse()].entries()) {
      effnetMappers.push(inject ? await Linear.loadConv1x1(root.pp('effnet_mappers').pp(i), effnet_embd, c_cond) : null);
    }

    const downBlocks: Block[][] = [];
    for (let i = 0; i < levels; i++) {
      const scope = root.pp('down_blocks').pp(i);
      const level: Block[] = [];
      if (i > 0) level.push(await DownSample.load(scope.pp(0), c_hidden[i - 1], c_hidden[i]));
      for (let repeat = 0; repeat < blocks[i]; repeat++) {
        for (const type of level_config[i]) {
          const cSkip = inject_effnet[i] ? c_cond : 0;
          level.push(await getBlock(scope.pp(level.length), type, c_hidden[i], nhead[i], cSkip));
        }
      }
      downBlocks.push(level);
    }

    const upBlocks: Block[][] = [];
    for (let i = levels - 1; i >= 0; i--) {
      const scope = root.pp('up_blocks').pp(levels - 1 - i);
      const level: Block[] = [];
      for (let j = 0; j < blocks[i]; j++) {
        for (const [k, type] of [...level_config[i]].entries()) {
          // The first block of every level but the deepest also takes that level's down-path output.
          let cSkip = i < levels - 1 && j === 0 && k === 0 ? c_hidden[i] : 0;
          cSkip += inject_effnet[i] ? c_cond : 0;
          level.push(await getBlock(scope.pp(level.length), type, c_hidden[i], nhead[i], cSkip));
        }
      }
      if (i > 0) level.push(await UpSample.load(scope.pp(level.length), c_hidden[i], c_hidden[i - 1]));
      upBlocks.push(level);
    }

    return new WuerstchenDiffNeXt(
      rt,
      config,
      await Linear.load(root.pp('clip_mapper'), clip_embd, c_cond),
      effnetMappers,
      await Linear.loadConv1x1(root.pp('embedding').pp(1), c_in * patch_size ** 2, c_hidden[0]),
      downBlocks,
      upBlocks,
      await Linear.loadConv1x1(root.pp('clf').pp(1), c_hidden[0], 2 * c_out * patch_size ** 2),
    );
  }

  /** Latent sizes must survive patch_size and every down-sampling evenly, or the skips would not line up. */
  get sizeMultiple(): number {
    return this.config.patch_size * 2 ** (this.config.c_hidden.length - 1);
  }

  /**
   * The denoiser: `x` NCHW [B, c_in, H, W] (H, W multiples of `sizeMultiple`), `r` the B noise
   * ratios, `effnet` the Stage C embedding NCHW [B, effnet_embd, h, w] (any h, w), `clip` the text
   * embedding [B, L, clip_embd] → the noise prediction NCHW [B, c_in, H, W]. Activations take the
   * dtype of `x` (effnet and clip must match it). Each block's temporaries return to the pool as
   * soon as the block is recorded.
   */
  async forward(x: Tensor, r: Float32Array, effnet: Tensor, clip: Tensor, capture?: Capture): Promise<Tensor> {
    this.checkInputs(x, r, effnet, clip);
    const rt = this.rt;
    const { c_r, patch_size } = this.config;

    const { rEmbed, clipEmbed, embedded } = await rt.scope(() => {
      const rEmbed = rt.upload(genREmbedding(r, c_r), [r.length, c_r], x.dtype, 'r_embed');
      capture?.record('gen_r_embedding', rEmbed);
      const mapped = this.clipMapper.forward(rt, clip);
      capture?.record('clip_mapper', mapped);
      const clipEmbed = this.seqNorm.forward(rt, mapped);
      capture?.record('seq_norm', clipEmbed);
      capture?.record('gen_c_embeddings', clipEmbed);

      const unshuffled = pixelUnshuffle(rt, nchwToNhwc(rt, x), patch_size);
      capture?.record('embedding.0', unshuffled, 'nhwc');
      const projected = this.embedding1.forward(rt, unshuffled);
      capture?.record('embedding.1', projected, 'nhwc');
      const embedded = this.embeddingNorm.forward(rt, projected);
      capture?.record('embedding.2', embedded, 'nhwc');
      return { rEmbed, clipEmbed, embedded };
    });
    const cond: Conditioning = { rEmbed, clip: clipEmbed, effnet: new EffnetResizer(rt, nchwToNhwc(rt, effnet)), capture };

    const levelOutputs = await this.downEncode(embedded, cond);
    const h = await this.upDecode(levelOutputs, cond);
    for (const t of [...levelOutputs, rEmbed, clipEmbed]) t.dispose();
    cond.effnet.dispose();

    const result = await rt.scope(() => {
      const normed = this.clfNorm.forward(rt, h);
      capture?.record('clf.0', normed, 'nhwc');
      const projected = this.clf1.forward(rt, normed);
      capture?.record('clf.1', projected, 'nhwc');
      const head = pixelShuffle(rt, projected, patch_size);
      capture?.record('clf.2', head, 'nhwc');
      return diffNeXtOutput(rt, x, head, OUTPUT_EPS);
    });
    h.dispose();
    return result;
  }

  /** `_down_encode`: the outputs of every level, deepest first. */
  private async downEncode(embedded: Tensor, cond: Conditioning): Promise<Tensor[]> {
    const levelOutputs: Tensor[] = [];
    let h = embedded;
    for (const [i, level] of this.downBlocks.entries()) {
      let effnetC: Tensor | undefined;
      for (const block of level) {
        if (block instanceof ResBlockStageB) effnetC ??= this.effnetCondition(i, h, cond);
        h = await this.step(block, h, effnetC, cond, levelOutputs);
      }
      effnetC?.dispose();
      levelOutputs.unshift(h);
    }
    return levelOutputs;
  }

  /** `_up_decode`: back up through the levels, joining each level's down-path output at its first block. */
  private async upDecode(levelOutputs: readonly Tensor[], cond: Conditioning): Promise<Tensor> {
    let h = levelOutputs[0];
    for (const [i, level] of this.upBlocks.entries()) {
      let effnetC: Tensor | undefined;
      for (const [j, block] of level.entries()) {
        let skip: Tensor | undefined;
        if (block instanceof ResBlockStageB) {
          effnetC ??= this.effnetCondition(this.downBlocks.length + i, h, cond);
          const levelSkip = j === 0 && i > 0 ? levelOutputs[i] : undefined;
          skip = levelSkip && effnetC ? concatChannels(this.rt, [levelSkip, effnetC]) : (levelSkip ?? effnetC);
        }
        const next = await this.step(block, h, skip, cond, levelOutputs);
        if (skip !== effnetC && skip !== levelOutputs[i]) skip?.dispose();
        h = next;
      }
      effnetC?.dispose();
    }
    return h;
  }

  /** Runs one block in its own scope, then frees its input unless that is a level output kept for the way up. */
  private async step(block: Block, h: Tensor, skip: Tensor | undefined, cond: Conditioning, keep: readonly Tensor[]): Promise<Tensor> {
    const { rt } = this;
    const { capture } = cond;
    const next = await rt.scope(() => {
      if (block instanceof ResBlockStageB) return block.forward(rt, h, skip, capture);
      if (block instanceof AttnBlock) return block.forward(rt, h, cond.clip, capture);
      if (block instanceof TimestepBlock) return block.forward(rt, h, cond.rEmbed, capture);
      return block.forward(rt, h, capture);
    });
    if (!keep.includes(h)) h.dispose();
    return next;
  }

  /** effnet_mappers[index] applied to the effnet resized to h's spatial size; undefined where that mapper is None. */
  private effnetCondition(index: number, h: Tensor, cond: Conditioning): Tensor | undefined {
    const mapper = this.effnetMappers[index];
    if (!mapper) return undefined;
    const resized = cond.effnet.at(h.shape[1], h.shape[2]);
    const out = mapper.forward(this.rt, resized);
    cond.capture?.record(`effnet_mappers.${index}`, out, 'nhwc');
    return out;
  }

  private checkInputs(x: Tensor, r: Float32Array, effnet: Tensor, clip: Tensor): void {
    const { c_in, effnet_embd, clip_embd } = this.config;
    const shape = (t: Tensor) => `[${t.shape.join(', ')}]`;
    const [batch, , height, width] = x.shape;
    if (x.shape.length !== 4 || x.shape[1] !== c_in) throw new Error(`WuerstchenDiffNeXt: x must be [B, ${c_in}, H, W], got ${shape(x)}`);
    const m = this.sizeMultiple;
    if (height % m !== 0 || width % m !== 0) {
      throw new Error(`WuerstchenDiffNeXt: x is ${height}×${width}, but H and W must be multiples of ${m} (patch_size × 2^(levels − 1))`);
    }
    if (r.length !== batch) throw new Error(`WuerstchenDiffNeXt: r has ${r.length} values for a batch of ${batch}`);
    if (effnet.shape.length !== 4 || effnet.shape[0] !== batch || effnet.shape[1] !== effnet_embd) {
      throw new Error(`WuerstchenDiffNeXt: effnet must be [${batch}, ${effnet_embd}, h, w], got ${shape(effnet)}`);
    }
    if (clip.shape.length !== 3 || clip.shape[0] !== batch || clip.shape[2] !== clip_embd) {
      throw new Error(`WuerstchenDiffNeXt: clip must be [${batch}, L, ${clip_embd}], got ${shape(clip)}`);
    }
    for (const [name, t] of [['effnet', effnet], ['clip', clip]] as const) {
      if (t.dtype !== x.dtype) throw new Error(`WuerstchenDiffNeXt: x is ${x.dtype} but ${name} is ${t.dtype}; they must match`);
    }
  }

  /** Returns every weight buffer to the pool. */
  dispose(): void {
    const modules = [this.clipMapper, this.embedding1, this.clf1, ...this.effnetMappers, ...this.downBlocks.flat(), ...this.upBlocks.flat()];
    for (const m of modules) for (const t of m?.parameters() ?? []) t.dispose();
  }
}
