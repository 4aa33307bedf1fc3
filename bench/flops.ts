/**
 * Analytic FLOP counts of one forward of each model, from its config: 2 FLOPs per multiply-add of
 * every Linear / 1×1 conv, dense and transposed conv, depthwise conv and attention (q·kᵀ and p·v).
 * Norms, activations, GRN and other elementwise work are left out (well under 1% of each model).
 */
import type { CLIPTextConfig } from '../src/models/clip/configuration_clip.js';
import type { WuerstchenDiffNeXtConfig } from '../src/models/stage_b/modeling_wuerstchen_diffnext.js';
import type { WuerstchenPriorConfig } from '../src/models/stage_c/modeling_wuerstchen_prior.js';
import { channelLevels, type PaellaVQConfig } from '../src/models/vqgan/configuration_paella_vq_model.js';

/** `rows` tokens through a Linear of `inF` → `outF` features. */
const linear = (rows: number, inF: number, outF: number) => 2 * rows * inF * outF;

/** Attention of `batch` × `queries` over `keys`, `channels` = heads × head dim. */
const attention = (batch: number, queries: number, keys: number, channels: number) => 4 * batch * queries * keys * channels;

/** Würstchen's AttnBlock with self_attn: keys and values are the `hw` normed tokens plus `textTokens` mapped ones. */
function attnBlock(batch: number, hw: number, c: number, cCond: number, textTokens: number): number {
  const keys = hw + textTokens;
  return (
    linear(batch * textTokens, cCond, c) + // kv_mapper
    2 * linear(batch * hw, c, c) + // to_q, to_out
    2 * linear(batch * keys, c, c) + // to_k, to_v
    attention(batch, hw, keys, c)
  );
}

/** Depthwise k×k conv plus the channelwise MLP c + cSkip → 4c → c (ResBlock and ResBlockStageB). */
function resBlock(tokens: number, c: number, cSkip: number, kernel: number): number {
  return 2 * kernel * kernel * tokens * c + linear(tokens, c + cSkip, 4 * c) + linear(tokens, 4 * c, c);
}

/** CLIPTextModel over `batch` sequences of `tokens`. */
export function clipTextFlops(config: CLIPTextConfig, batch: number, tokens: number): number {
  const rows = batch * tokens;
  const c = config.hiddenSize;
  const layer = 4 * linear(rows, c, c) + attention(batch, tokens, tokens, c) + linear(rows, c, config.intermediateSize) + linear(rows, config.intermediateSize, c);
  return config.numHiddenLayers * layer;
}

/** WuerstchenPrior (Stage C) at `height` × `width` latents with `textTokens` conditioning tokens. */
export function priorFlops(config: WuerstchenPriorConfig, batch: number, height: number, width: number, textTokens = 77): number {
  const { c, c_in, c_cond, c_r } = config;
  const hw = height * width;
  const tokens = batch * hw;
  const perDepth = resBlock(tokens, c, 0, 3) + linear(batch, c_r, 2 * c) + attnBlock(batch, hw, c, c, textTokens);
  return (
    linear(tokens, c_in, c) + // projection
    linear(batch * textTokens, c_cond, c) +
    linear(batch * textTokens, c, c) + // cond_mapper
    config.depth * perDepth +
    linear(tokens, c, 2 * c_in) // out
  );
}

/** WuerstchenDiffNeXt (Stage B) at `height` × `width` latents, effnet `effnetSize`² and `textTokens` CLIP tokens. */
export function diffNeXtFlops(
  config: WuerstchenDiffNeXtConfig,
  batch: number,
  height: number,
  width: number,
  textTokens = 77,
): number {
  const { c_in, c_out, c_r, patch_size: p, c_cond, c_hidden, blocks, level_config, inject_effnet, effnet_embd, clip_embd } = config;
  const levels = c_hidden.length;
  const hwAt = (level: number) => ((height / p) * (width / p)) / 4 ** level;
  const block = (type: string, level: number, cSkip: number) => {
    const c = c_hidden[level];
    const hw = hwAt(level);
    if (type === 'C') return resBlock(batch * hw, c, cSkip, config.kernel_size);
    if (type === 'A') return attnBlock(batch, hw, c, c_cond, textTokens);
    return linear(batch, c_r, 2 * c);
  };
  let flops = linear(batch * textTokens, clip_embd, c_cond) + linear(batch * hwAt(0), c_in * p * p, c_hidden[0]);
  for (let i = 0; i < levels; i++) {
    // The effnet mapper runs once per level on the way down and once on the way up.
    if (inject_effnet[i]) flops += 2 * linear(batch * hwAt(i), effnet_embd, c_cond);
    const skip = inject_effnet[i] ? c_cond : 0;
    if (i > 0) flops += linear(batch * hwAt(i), 4 * c_hidden[i - 1], c_hidden[i]); // DownSample, k2 s2
    for (let r = 0; r < blocks[i]; r++) for (const type of level_config[i]) flops += block(type, i, skip);
    for (let r = 0; r < blocks[i]; r++) {
      for (const [k, type] of [...level_config[i]].entries()) {
        const levelSkip = i < levels - 1 && r === 0 && k === 0 ? c_hidden[i] : 0;
        flops += block(type, i, levelSkip + skip);
      }
    }
    if (i > 0) flops += linear(batch * hwAt(i - 1), c_hidden[i], c_hidden[i - 1]); // UpSample, k2 s2 transposed
  }
  return flops + linear(batch * hwAt(0), c_hidden[0], 2 * c_out * p * p); // clf
}

/** PaellaVQModel.decode of `height` × `width` latents (the pipelines skip the quantizer). */
export function vqganDecodeFlops(config: PaellaVQConfig, batch: number, height: number, width: number): number {
  const c = channelLevels(config);
  const levels = config.levels;
  let tokens = batch * height * width;
  let flops = linear(tokens, config.latentChannels, c[levels - 1]);
  for (let i = 0; i < levels; i++) {
    const ch = c[levels - 1 - i];
    const blocks = i === 0 ? config.bottleneckBlocks : 1;
    flops += blocks * (2 * 9 * tokens * ch + linear(tokens, ch, 4 * ch) + linear(tokens, 4 * ch, ch));
    if (i < levels - 1) {
      // ConvTranspose2d k4 s2 p1: twice the size, every output pixel gathers 2×2 taps of the input.
      tokens *= 4;
      flops += linear(tokens, 4 * ch, c[levels - 2 - i]);
    }
  }
  return flops + linear(tokens, c[0], config.outChannels * config.upDownScaleFactor ** 2);
}
