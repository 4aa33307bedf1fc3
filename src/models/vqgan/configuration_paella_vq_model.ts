// The `@register_to_config` arguments of diffusers v0.21.0
// src/diffusers/pipelines/wuerstchen/modeling_paella_vq_model.py (PaellaVQModel.__init__), as a
// vqgan/config.json holds them.
import { describe } from '../../io/safetensors_format.js';

export interface PaellaVQConfig {
  inChannels: number;
  outChannels: number;
  upDownScaleFactor: number;
  levels: number;
  bottleneckBlocks: number;
  embedDim: number;
  latentChannels: number;
  numVqEmbeddings: number;
  /** The pipeline decodes `scaleFactor · latents`. */
  scaleFactor: number;
}

export class PaellaVQConfigError extends Error {
  override name = 'PaellaVQConfigError';
}

/** PaellaVQModel.__init__ defaults, used for fields a config.json leaves out. */
const DEFAULTS = {
  in_channels: 3,
  out_channels: 3,
  up_down_scale_factor: 2,
  levels: 2,
  bottleneck_blocks: 12,
  embed_dim: 384,
  latent_channels: 4,
  num_vq_embeddings: 8192,
  scale_factor: 0.3764,
};

/** Parses the JSON text of a PaellaVQModel `config.json`; `source` names it in errors. */
export function parsePaellaVQConfig(text: string, source: string): PaellaVQConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new PaellaVQConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new PaellaVQConfigError(`${source}: must be a JSON object`);
  }
  const raw = { ...DEFAULTS, ...(json as Record<string, unknown>) };
  const count = (field: keyof typeof DEFAULTS, min: number): number => {
    const value = raw[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new PaellaVQConfigError(`${source}: '${field}' must be an integer ≥ ${min}, got ${describe(value)}`);
    }
    return value;
  };
  const scaleFactor = raw.scale_factor;
  if (typeof scaleFactor !== 'number' || !Number.isFinite(scaleFactor)) {
    throw new PaellaVQConfigError(`${source}: 'scale_factor' must be a number, got ${describe(scaleFactor)}`);
  }
  const config: PaellaVQConfig = {
    inChannels: count('in_channels', 1),
    outChannels: count('out_channels', 1),
    upDownScaleFactor: count('up_down_scale_factor', 1),
    levels: count('levels', 1),
    bottleneckBlocks: count('bottleneck_blocks', 1),
    embedDim: count('embed_dim', 1),
    latentChannels: count('latent_channels', 1),
    numVqEmbeddings: count('num_vq_embeddings', 1),
    scaleFactor,
  };
  if (config.embedDim < 2 ** (config.levels - 1)) {
    throw new PaellaVQConfigError(
      `${source}: embed_dim ${config.embedDim} leaves no channels at the first of ${config.levels} levels`,
    );
  }
  return config;
}

/** Channels per level, smallest first: `[embed_dim // 2**i for i in reversed(range(levels))]`. */
export function channelLevels(config: PaellaVQConfig): number[] {
  return Array.from({ length: config.levels }, (_, i) => Math.floor(config.embedDim / 2 ** (config.levels - 1 - i)));
}
