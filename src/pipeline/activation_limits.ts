/**
 * The largest activations a generation will allocate, worked out from the model configs and the
 * request alone, so a size the device cannot hold is refused before anything is loaded or allocated.
 * Every tensor must fit one storage binding (`maxStorageBufferBindingSize`) and its pool bucket one
 * buffer (`maxBufferSize`); the runtime would otherwise fail midway, after minutes of work.
 *
 * The shapes mirror the models' forward passes (NHWC activations): a block's widest intermediate is
 * what matters, not every tensor. test/reliability_validation.test.ts checks them against the largest
 * buffer a tiny generation really asks the pool for.
 */
import type { CLIPTextConfig } from '../models/clip/configuration_clip.js';
import type { WuerstchenDiffNeXtConfig } from '../models/stage_b/modeling_wuerstchen_diffnext.js';
import type { WuerstchenPriorConfig } from '../models/stage_c/modeling_wuerstchen_prior.js';
import { channelLevels, type PaellaVQConfig } from '../models/vqgan/configuration_paella_vq_model.js';
import { scoreWindowShape } from '../ops/attention.js';
import { bucketSize } from '../runtime/buffer_pool.js';
import type { Runtime } from '../runtime/device.js';
import { bytesPerElement, type DType } from '../runtime/dtype.js';
import { PipelineInputError } from './validate.js';

/** One tensor a stage will allocate. */
export interface ActivationNeed {
  /** The model and block, for the error message. */
  where: string;
  shape: number[];
  /** The requested dtype; the runtime may store f16 as f32. */
  dtype: DType;
  /** Computed in pieces that each fit the device, whatever the whole's size: never a limit. */
  chunked?: boolean;
}

/** The text conditioning's token count (CLIP's 77 positions). */
export interface TextShape {
  /** Prompts encoded in one text-encoder call. */
  prompts: number;
  tokens: number;
}

/**
 * An attention's score window where the 'gemm' attention kernel runs (CPU-emulated GPUs; the flash
 * kernel allocates none). The requested dtype's size: stored as f32 it is the same window's shape
 * at twice the bytes, still within SCORE_WINDOW_BYTES (64 MiB, below WebGPU's minimum binding limit).
 */
function attentionScores(where: string, batch: number, heads: number, lq: number, lk: number, dtype: DType): ActivationNeed {
  return { where: `${where} attention scores`, shape: scoreWindowShape(batch, heads, lq, lk, bytesPerElement(dtype)), dtype };
}

/** The CLIP text tower: its MLP's hidden layer is the widest tensor. */
export function textEncoderActivations(config: CLIPTextConfig, text: TextShape, dtype: DType): ActivationNeed[] {
  return [
    { where: 'text encoder MLP', shape: [text.prompts, text.tokens, config.intermediateSize], dtype },
    attentionScores('text encoder', text.prompts, config.numAttentionHeads, text.tokens, text.tokens, dtype),
  ];
}

/**
 * Stage C on `batch` latents of h × w (the batch doubled under guidance): a ResBlock's 4c-wide
 * channelwise layer, and each AttnBlock's keys and values (the pixels followed by the text tokens).
 */
export function priorActivations(config: WuerstchenPriorConfig, batch: number, h: number, w: number, tokens: number, dtype: DType): ActivationNeed[] {
  return [
    { where: 'prior ResBlock', shape: [batch, h, w, 4 * config.c], dtype },
    { where: 'prior AttnBlock', shape: [batch, h * w + tokens, config.c], dtype },
    attentionScores('prior AttnBlock', batch, config.nhead, h * w, h * w + tokens, dtype),
  ];
}

/**
 * Stage B on `batch` latents of lh × lw: per level, a ResBlockStageB's 4c-wide layer and its input
 * joined with the skip and effnet channels, the effnet mapping, and the AttnBlock keys and values;
 * then the classifier head at full latent size.
 */
export function decoderActivations(
  config: WuerstchenDiffNeXtConfig,
  batch: number,
  lh: number,
  lw: number,
  tokens: number,
  dtype: DType,
): ActivationNeed[] {
  const { c_hidden, c_cond, patch_size: p, level_config, inject_effnet } = config;
  const needs: ActivationNeed[] = [];
  c_hidden.forEach((c, i) => {
    const [h, w] = [lh / p / 2 ** i, lw / p / 2 ** i];
    const where = `decoder level ${i}`;
    if (level_config[i].includes('C')) {
      const skip = (i < c_hidden.length - 1 ? c : 0) + (inject_effnet[i] ? c_cond : 0);
      needs.push({ where: `${where} ResBlock`, shape: [batch, h, w, Math.max(4 * c, c + skip)], dtype });
    }
    if (inject_effnet[i]) needs.push({ where: `${where} effnet mapper`, shape: [batch, h, w, c_cond], dtype });
    if (level_config[i].includes('A')) {
      needs.push({ where: `${where} AttnBlock`, shape: [batch, h * w + tokens, c], dtype });
      needs.push(attentionScores(`${where} AttnBlock`, batch, config.nhead[i], h * w, h * w + tokens, dtype));
    }
  });
  needs.push({ where: 'decoder head', shape: [batch, lh, lw, 2 * config.c_out], dtype });
  return needs;
}

/**
 * Stage A decoding `batch` latents of lh × lw: the activations of each level, widest where the
 * resolution is highest, and the output projection. The MLP runs in bounded chunks, and the last
 * level (after the last up-sampler) in bands of rows when its maps exceed a binding.
 */
export function vqganActivations(config: PaellaVQConfig, batch: number, lh: number, lw: number, dtype: DType): ActivationNeed[] {
  const channels = channelLevels(config);
  const levels = config.levels;
  const needs: ActivationNeed[] = channels.flatMap((c, i) => {
    const scale = 2 ** (levels - 1 - i);
    const [h, w] = [lh * scale, lw * scale];
    const banded = i === 0 && levels > 1;
    return [
      { where: `VQGAN level ${i}`, shape: [batch, h, w, c], dtype, chunked: banded },
      // The MLP's hidden layer runs in row chunks that stay within the binding limit.
      { where: `VQGAN level ${i} MLP`, shape: [batch, h, w, 4 * c], dtype, chunked: true },
    ];
  });
  const scale = 2 ** (levels - 1);
  const f2 = config.upDownScaleFactor ** 2;
  // The output projection, as large as the image (which exists whole, banded or not).
  needs.push({ where: 'VQGAN output', shape: [batch, lh * scale, lw * scale, config.outChannels * f2], dtype });
  return needs;
}

function tensorBytes(rt: Runtime, need: ActivationNeed): number {
  const elements = need.shape.reduce((a, b) => a * b, 1);
  return Math.ceil((elements * bytesPerElement(rt.storageDType(need.dtype))) / 4) * 4;
}

/**
 * Throws a PipelineInputError when one of `needs` cannot be allocated on this device; `request`
 * describes what was asked for (e.g. "a 4096×4096 image").
 */
export function checkActivationsFit(rt: Runtime, request: string, needs: readonly ActivationNeed[]): void {
  const { maxStorageBufferBindingSize: binding, maxBufferSize: buffer } = rt.limits;
  let worst: { need: ActivationNeed; bytes: number } | undefined;
  for (const need of needs) {
    if (need.chunked) continue;
    const bytes = tensorBytes(rt, need);
    if ((bytes > binding || bucketSize(bytes) > buffer) && !(worst && worst.bytes >= bytes)) worst = { need, bytes };
  }
  if (!worst) return;
  const { need, bytes } = worst;
  const limit = bytes > binding ? `maxStorageBufferBindingSize of ${binding} bytes` : `maxBufferSize of ${buffer} bytes`;
  throw new PipelineInputError(
    `${request} needs a ${need.where} tensor of [${need.shape.join(', ')}] ${rt.storageDType(need.dtype)} ` +
      `(${bytes} bytes), more than this device's ${limit}; choose a smaller size or fewer images`,
  );
}
