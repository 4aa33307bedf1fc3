/**
 * The text side of both Würstchen pipelines, as diffusers' `encode_prompt`: tokenize to 77 tokens
 * (warning about truncation), run the CLIP text model, repeat each prompt's embedding for its
 * images, and for classifier-free guidance append the negative (or empty) prompts' embeddings.
 */
import type { CLIPTextModel } from '../models/clip/modeling_clip.js';
import { truncationWarning, type CLIPTokenizer } from '../models/clip/tokenization_clip.js';
import { concatBatch, gatherBatch } from '../ops/batch.js';
import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import type { PipelineDump } from './pipeline_dump.js';

export interface TextStage {
  tokenizer: CLIPTokenizer;
  textEncoder: CLIPTextModel;
}

/** [0, 0, …, 1, 1, …]: `repeat_interleave(times, dim=0)` of a batch of `batch`. */
export function repeatInterleave(batch: number, times: number): number[] {
  return Array.from({ length: batch * times }, (_, i) => Math.floor(i / times));
}

async function embed(
  text: TextStage,
  prompts: readonly string[],
  dump: PipelineDump | undefined,
  prefix: string,
): Promise<Tensor> {
  const tokens = text.tokenizer.call([...prompts]);
  if (tokens.truncatedText) console.warn(truncationWarning(tokens.truncatedText, text.tokenizer.modelMaxLength));
  dump?.ids(`${prefix}.input_ids`, tokens.input_ids);
  dump?.ids(`${prefix}.attention_mask`, tokens.attention_mask);
  const { lastHiddenState, poolerOutput } = await text.textEncoder.forward(tokens.input_ids, tokens.attention_mask);
  poolerOutput.dispose();
  if (dump) await dump.device(`${prefix}.last_hidden_state`, lastHiddenState);
  return lastHiddenState;
}

/**
 * Embeddings for `prompts`, each repeated `imagesPerPrompt` times, then (with guidance) the
 * negative prompts' likewise: [cond…, uncond…] as diffusers concatenates them.
 */
export async function encodePrompt(
  rt: Runtime,
  text: TextStage,
  prompts: readonly string[],
  imagesPerPrompt: number,
  guidance: boolean,
  negativePrompts: readonly string[] | undefined,
  dump: PipelineDump | undefined,
  stage: string,
): Promise<Tensor> {
  return rt.scope(async () => {
    const index = repeatInterleave(prompts.length, imagesPerPrompt);
    const cond = gatherBatch(rt, await embed(text, prompts, dump, `${stage}.text_encoder.call0`), index);
    if (!guidance) return cond;
    const negative = negativePrompts ?? prompts.map(() => '');
    const uncond = gatherBatch(rt, await embed(text, negative, dump, `${stage}.text_encoder.call1`), index);
    return concatBatch(rt, [cond, uncond], 'text_encoder_hidden_states');
  });
}
