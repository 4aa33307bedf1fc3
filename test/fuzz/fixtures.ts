/** The fixture files the fuzz targets start from (test/fixtures/pipelines: the tiny pipelines). */
import { fileURLToPath } from 'node:url';
import type { ConfigKind } from './config_cases.js';

const fixture = (path: string) => fileURLToPath(new URL(`../fixtures/${path}`, import.meta.url));
const prior = (path: string) => fixture(`pipelines/wuerstchen-prior/${path}`);
const decoder = (path: string) => fixture(`pipelines/wuerstchen/${path}`);

export const TOKENIZER_DIR = prior('tokenizer');

/** Checkpoints of the tiny models, whose headers seed the safetensors target. */
export const CHECKPOINTS = {
  text_encoder: prior('text_encoder/model.safetensors'),
  prior: prior('prior/diffusion_pytorch_model.safetensors'),
  decoder: decoder('decoder/diffusion_pytorch_model.safetensors'),
  vqgan: decoder('vqgan/diffusion_pytorch_model.safetensors'),
};

/** The tiny models' configs: the only ones their checkpoints match. */
export const TINY_CONFIGS: Record<ConfigKind, string[]> = {
  text_encoder: [prior('text_encoder/config.json')],
  prior: [prior('prior/config.json')],
  decoder: [decoder('decoder/config.json')],
  vqgan: [decoder('vqgan/config.json')],
  scheduler: [prior('scheduler/scheduler_config.json')],
  prior_index: [prior('model_index.json')],
  decoder_index: [decoder('model_index.json')],
};

/** Tiny and full-size configs of every kind. */
export const ALL_CONFIGS: Record<ConfigKind, string[]> = {
  ...TINY_CONFIGS,
  text_encoder: [...TINY_CONFIGS.text_encoder, fixture('configs/wuerstchen-prior_text_encoder.json'), fixture('configs/wuerstchen_text_encoder.json')],
  prior: [...TINY_CONFIGS.prior, fixture('manifests/prior_config.json')],
  decoder: [...TINY_CONFIGS.decoder, fixture('configs/wuerstchen_decoder.json')],
};
