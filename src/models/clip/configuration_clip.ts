// Mirrors transformers src/transformers/models/clip/configuration_clip.py (CLIPTextConfig): the fields
// of a CLIP text tower's config.json that the forward pass depends on.
import { describe } from '../../io/safetensors_format.js';

/** The activations transformers' ACT2FN maps these names to, as far as CLIP text towers use them. */
export type CLIPHiddenAct = 'gelu' | 'quick_gelu';

export interface CLIPTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  maxPositionEmbeddings: number;
  hiddenAct: CLIPHiddenAct;
  layerNormEps: number;
  /** 2 in configs written before transformers PR #24773, which switches the pooler to argmax(input_ids). */
  eosTokenId: number;
}

export class CLIPConfigError extends Error {
  override name = 'CLIPConfigError';
}

const HIDDEN_ACTS: readonly string[] = ['gelu', 'quick_gelu'];

/** CLIPTextConfig.__init__ defaults, used for fields a config.json leaves out. */
const DEFAULTS = {
  vocab_size: 49408,
  hidden_size: 512,
  intermediate_size: 2048,
  num_hidden_layers: 12,
  num_attention_heads: 8,
  max_position_embeddings: 77,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
  eos_token_id: 49407,
};

/** Parses the JSON text of a CLIPTextModel `config.json`; `source` names it in errors. */
export function parseCLIPTextConfig(text: string, source: string): CLIPTextConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new CLIPConfigError(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new CLIPConfigError(`${source}: must be a JSON object`);
  }
  const raw = { ...DEFAULTS, ...(json as Record<string, unknown>) };
  const count = (field: keyof typeof DEFAULTS, min: number): number => {
    const value = raw[field];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
      throw new CLIPConfigError(`${source}: '${field}' must be an integer ≥ ${min}, got ${describe(value)}`);
    }
    return value;
  };
  const hiddenAct = raw.hidden_act;
  if (typeof hiddenAct !== 'string' || !HIDDEN_ACTS.includes(hiddenAct)) {
    throw new CLIPConfigError(
      `${source}: 'hidden_act' ${describe(hiddenAct)} is not supported (one of: ${HIDDEN_ACTS.join(', ')})`,
    );
  }
  const eps = raw.layer_norm_eps;
  if (typeof eps !== 'number' || !(eps > 0) || !Number.isFinite(eps)) {
    throw new CLIPConfigError(`${source}: 'layer_norm_eps' must be a positive finite number, got ${describe(eps)}`);
  }
  const config: CLIPTextConfig = {
    vocabSize: count('vocab_size', 1),
    hiddenSize: count('hidden_size', 1),
    intermediateSize: count('intermediate_size', 1),
    numHiddenLayers: count('num_hidden_layers', 0),
    numAttentionHeads: count('num_attention_heads', 1),
    maxPositionEmbeddings: count('max_position_embeddings', 1),
    hiddenAct: hiddenAct as CLIPHiddenAct,
    layerNormEps: eps,
    eosTokenId: count('eos_token_id', 0),
  };
  if (config.hiddenSize % config.numAttentionHeads !== 0) {
    throw new CLIPConfigError(
      `${source}: hidden_size ${config.hiddenSize} is not divisible by num_attention_heads ${config.numAttentionHeads}`,
    );
  }
  return config;
}
