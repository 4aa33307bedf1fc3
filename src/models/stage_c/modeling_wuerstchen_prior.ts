// Mirrors diffusers v0.21.0 src/diffusers/pipelines/wuerstchen/modeling_wuerstchen_prior.py
// (WuerstchenPrior, Stage C): text-conditioned denoiser of the 16-channel image-embedding latents.
import { loadFromReader, loadPretrainedFolder, type PretrainedLoadOptions } from '../../nn/pretrained.js';
import type { TensorReader } from '../../io/safetensors.js';
import { describe } from '../../io/safetensors_format.js';
import type { Capture } from '../../nn/capture.js';
import type { WeightScope } from '../../nn/weight_scope.js';
import { nchwToNhwc } from '../../ops/shuffle.js';
import { priorOutput } from '../../ops/prior_output.js';
import type { Runtime } from '../../runtime/device.js';
import type { DType } from '../../runtime/dtype.js';
import type { Tensor } from '../../runtime/tensor.js';
import { AttnBlock, Linear, linearAct, ResBlock, TimestepBlock, WuerstchenLayerNorm } from '../common/modeling_wuerstchen_common.js';
import { genREmbedding } from '../common/r_embedding.js';

/** `prior/config.json`; missing keys take the defaults of WuerstchenPrior.__init__. */
export interface WuerstchenPriorConfig {
  c_in: number;
  c: number;
  c_cond: number;
  c_r: number;
  depth: number;
  nhead: number;
  /** Training only: dropout is the identity at inference. */
  dropout: number;
}

const DEFAULT_CONFIG: WuerstchenPriorConfig = { c_in: 16, c: 1280, c_cond: 1024, c_r: 64, depth: 16, nhead: 16, dropout: 0.1 };
const INTEGER_KEYS = ['c_in', 'c', 'c_cond', 'c_r', 'depth', 'nhead'] as const;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function parseWuerstchenPriorConfig(text: string, source: string): WuerstchenPriorConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ConfigError(`${source}: expected a JSON object`);
  const raw = json as Record<string, unknown>;
  if (raw._class_name !== undefined && raw._class_name !== 'WuerstchenPrior') {
    throw new ConfigError(`${source}: _class_name is ${describe(raw._class_name)}, expected "WuerstchenPrior"`);
  }
  const config = { ...DEFAULT_CONFIG };
  for (const key of INTEGER_KEYS) {
    const value = raw[key] ?? DEFAULT_CONFIG[key];
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new ConfigError(`${source}: "${key}" must be a positive integer, got ${describe(value)}`);
    }
    config[key] = value;
  }
  const dropout = raw.dropout ?? DEFAULT_CONFIG.dropout;
  if (typeof dropout !== 'number') throw new ConfigError(`${source}: "dropout" must be a number, got ${describe(dropout)}`);
  config.dropout = dropout;
  if (config.c < config.nhead) throw new ConfigError(`${source}: c (${config.c}) is smaller than nhead (${config.nhead})`);
  return config;
}

type Block = ResBlock | TimestepBlock | AttnBlock;

export class WuerstchenPrior {
  readonly outNorm = new WuerstchenLayerNorm(1e-6);

  private constructor(
    readonly rt: Runtime,
    readonly config: WuerstchenPriorConfig,
    readonly projection: Linear,
    readonly condMapper0: Linear,
    readonly condMapper2: Linear,
    /** Per depth step: ResBlock, TimestepBlock, AttnBlock (blocks.3i, 3i+1, 3i+2). */
    readonly blocks: readonly Block[],
    readonly out1: Linear,
  ) {}

  /** Loads `<dir>/config.json` and `<dir>/diffusion_pytorch_model.safetensors` (a diffusers `prior/` folder). */
  static fromPretrained(rt: Runtime, dir: string, options: PretrainedLoadOptions = {}): Promise<WuerstchenPrior> {
    return loadPretrainedFolder(dir, 'diffusion_pytorch_model.safetensors', parseWuerstchenPriorConfig, (reader, file, config) =>
      WuerstchenPrior.fromReader(rt, reader, file, config, options),
    );
  }

  /** Loads every tensor of `reader` by its state-dict key, tensor by tensor; fails on missing, mis-shaped or unused keys. */
  static fromReader(
    rt: Runtime,
    reader: TensorReader,
    file: string,
    config: WuerstchenPriorConfig,
    options: PretrainedLoadOptions = {},
  ): Promise<WuerstchenPrior> {
    return loadFromReader(rt, reader, file, options, (root) => WuerstchenPrior.load(rt, root, config));
  }

  private static async load(rt: Runtime, root: WeightScope, config: WuerstchenPriorConfig): Promise<WuerstchenPrior> {
    const { c_in, c, c_cond, c_r, depth, nhead } = config;
    const projection = await Linear.loadConv1x1(root.pp('projection'), c_in, c);
    const condMapper0 = await Linear.load(root.pp('cond_mapper').pp(0), c_cond, c);
    const condMapper2 = await Linear.load(root.pp('cond_mapper').pp(2), c, c);
    const blocks: Block[] = [];
    const scope = root.pp('blocks');
    for (let i = 0; i < depth; i++) {
      blocks.push(await ResBlock.load(scope.pp(3 * i), c));
      blocks.push(await TimestepBlock.load(scope.pp(3 * i + 1), c, c_r));
      blocks.push(await AttnBlock.load(scope.pp(3 * i + 2), c, c, nhead, true));
    }
    const out1 = await Linear.loadConv1x1(root.pp('out').pp(1), c, c_in * 2);
    return new WuerstchenPrior(rt, config, projection, condMapper0, condMapper2, blocks, out1);
  }

  /** diffusers' gen_r_embedding, on the host (see r_embedding.ts), uploaded as [B, c_r]. */
  genREmbedding(r: Float32Array, dtype: DType): Tensor {
    return this.rt.upload(genREmbedding(r, this.config.c_r), [r.length, this.config.c_r], dtype, 'r_embed');
  }

  /**
   * The denoiser: `x` NCHW [B, c_in, H, W] (any H, W), `r` the B noise ratios, `c` the text
   * conditioning [B, L, c_cond] → NCHW [B, c_in, H, W] in f32. Activations take the dtype of `x`
   * (and `c`). Each block's temporaries return to the pool as soon as the block is recorded.
   */
  async forward(x: Tensor, r: Float32Array, c: Tensor, capture?: Capture): Promise<Tensor> {
    const rt = this.rt;
    const { c_in, c_cond } = this.config;
    const [batch] = x.shape;
    if (x.shape.length !== 4 || x.shape[1] !== c_in) {
      throw new Error(`WuerstchenPrior: x must be [B, ${c_in}, H, W], got [${x.shape.join(', ')}]`);
    }
    if (c.shape.length !== 3 || c.shape[0] !== batch || c.shape[2] !== c_cond) {
      throw new Error(`WuerstchenPrior: c must be [${batch}, L, ${c_cond}], got [${c.shape.join(', ')}]`);
    }
    if (r.length !== batch) throw new Error(`WuerstchenPrior: r has ${r.length} values for a batch of ${batch}`);
    if (c.dtype !== x.dtype) throw new Error(`WuerstchenPrior: x is ${x.dtype} but c is ${c.dtype}; they must match`);

    const { h, cEmbed, rEmbed } = await rt.scope(() => {
      const h = this.projection.forward(rt, nchwToNhwc(rt, x));
      capture?.record('projection', h, 'nhwc');
      const mapped = linearAct(rt, c, this.condMapper0, 'leaky_relu', capture, 'cond_mapper.0', 'cond_mapper.1');
      const cEmbed = this.condMapper2.forward(rt, mapped);
      capture?.record('cond_mapper.2', cEmbed);
      const rEmbed = this.genREmbedding(r, x.dtype);
      capture?.record('gen_r_embedding', rEmbed);
      return { h, cEmbed, rEmbed };
    });

    let hidden = h;
    for (const block of this.blocks) {
      const next = await rt.scope(() => {
        if (block instanceof AttnBlock) return block.forward(rt, hidden, cEmbed, capture);
        if (block instanceof TimestepBlock) return block.forward(rt, hidden, rEmbed, capture);
        return block.forward(rt, hidden, capture);
      });
      hidden.dispose();
      hidden = next;
    }
    cEmbed.dispose();
    rEmbed.dispose();

    const result = await rt.scope(() => {
      const normed = this.outNorm.forward(rt, hidden);
      capture?.record('out.0', normed, 'nhwc');
      const head = this.out1.forward(rt, normed);
      capture?.record('out.1', head, 'nhwc');
      return priorOutput(rt, x, head);
    });
    hidden.dispose();
    return result;
  }

  /** Returns every weight buffer to the pool. */
  dispose(): void {
    const tensors = [this.projection, this.condMapper0, this.condMapper2, this.out1, ...this.blocks].flatMap((m) => m.parameters());
    for (const t of tensors) t.dispose();
  }
}

