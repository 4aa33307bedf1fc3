/**
 * The attention probabilities softmax(q·kᵀ·scale + mask) of every head as a tensor, for inspection
 * (transformers' `output_attentions`). `attention` (attention.ts) computes the same attention
 * without ever materialising them; this path costs Lq × Lk × heads f32 values and is run only on request.
 */
import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import { softmax } from './softmax.js';

const WG = 256;

export interface AttentionScoresOptions {
  heads: number;
  /** Multiplies q·kᵀ; default 1/√(head dim). */
  scale?: number;
  /** Query i sees keys j ≤ i only. */
  causal?: boolean;
  /** [B, Lk]: 1 = attend, anything else = padding (transformers' 2-D `attention_mask`). */
  keyPaddingMask?: Tensor;
}

const shape = (t: Tensor) => `[${t.shape.join(', ')}]`;

/**
 * Masked scores [B, H, Lq, Lk] in f32 from q [B, Lq, H·D] and k [B, Lk, H·D]: a key hit by n masks
 * scores −n·1e30, a finite stand-in for torch's n·finfo.min that orders keys the same way.
 */
export function attentionScores(rt: Runtime, q: Tensor, k: Tensor, options: AttentionScoresOptions): Tensor {
  const { heads, causal = false, keyPaddingMask: mask } = options;
  if (q.shape.length !== 3 || k.shape.length !== 3) {
    throw new Error(`attentionScores: q and k must be [batch, tokens, heads·headDim]; got q ${shape(q)}, k ${shape(k)}`);
  }
  const [batch, lq, channels] = q.shape;
  const lk = k.shape[1];
  if (k.shape[0] !== batch || k.shape[2] !== channels || k.dtype !== q.dtype) {
    throw new Error(`attentionScores: q ${shape(q)} ${q.dtype} and k ${shape(k)} ${k.dtype} disagree in batch, channels or dtype`);
  }
  if (!Number.isInteger(heads) || heads < 1 || channels % heads !== 0) {
    throw new Error(`attentionScores: ${channels} channels do not split into ${heads} heads`);
  }
  if (mask && (mask.shape.length !== 2 || mask.shape[0] !== batch || mask.shape[1] !== lk)) {
    throw new Error(`attentionScores: keyPaddingMask must be [${batch}, ${lk}]; got ${shape(mask)}`);
  }
  const headDim = channels / heads;
  const total = batch * heads * lq * lk;
  const scores = rt.empty([batch, heads, lq, lk], 'f32', 'attention_scores');
  rt.dispatch({
    kernel: {
      shader: 'attention_scores.wgsl',
      flags: [...(causal ? ['CAUSAL'] : []), ...(mask ? ['PADDING_MASK'] : [])],
      consts: { WG },
      dtypes: { T: q.dtype, ...(mask ? { M: mask.dtype } : {}) },
    },
    label: 'attention_scores',
    params: new Params()
      .u32(total, heads, lq, lk, headDim)
      .f32(options.scale ?? 1 / Math.sqrt(headDim))
      .data(),
    inputs: mask ? [q, k, mask] : [q, k],
    outputs: [scores],
    workgroups: rt.grid(total, WG),
    work: 2 * total * headDim,
  });
  return scores;
}

/** softmax(attentionScores(q, k)) over keys, in f32: [B, H, Lq, Lk], equal to torch's eager attention weights. */
export function attentionProbs(rt: Runtime, q: Tensor, k: Tensor, options: AttentionScoresOptions): Tensor {
  const scores = attentionScores(rt, q, k, options);
  const probs = softmax(rt, scores);
  scores.dispose();
  return probs;
}
