import type { Runtime } from '../runtime/device.js';
import { bytesPerElement } from '../runtime/dtype.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';
import { deviceTraits } from './device_traits.js';
import { matmul } from './matmul.js';
import { permute } from './shuffle.js';
import { softmax } from './softmax.js';

/** Workgroup tiling: queries per workgroup (one per invocation), keys staged per step (a multiple of 4). */
export interface AttentionTiles {
  queries: number;
  keys: number;
}

export interface AttentionOptions {
  heads: number;
  /** Multiplies q·kᵀ; default 1/√(head dim). */
  scale?: number;
  /** Query i attends to keys j ≤ i only (transformers' causal mask, both sequences starting at token 0). */
  causal?: boolean;
  /**
   * [B, Lk]: 1 = attend, anything else (normally 0) = padding, as the `attention_mask` that
   * transformers' `_prepare_4d_attention_mask` turns into finfo.min. Keys hit by both this and
   * the causal mask rank below keys hit by one, as torch's −inf does; a row whose keys are all
   * hit by both gets uniform weights over them where torch gives NaN.
   */
  keyPaddingMask?: Tensor;
  /** Forces a kernel (tests, benchmarks); by default 'gemm' on CPU-emulated GPUs, else 'flash'. */
  kernel?: AttentionKernel;
  /** Flash kernel tiles (implies 'flash'), normally chosen from the shape; tests and benchmarks force them. */
  tiles?: AttentionTiles;
  /** Bounds the 'gemm' kernel's scores (and as much again for probabilities); default 64 MiB. */
  scoreWindowBytes?: number;
}

/**
 * 'flash': shaders/attention.wgsl, one pass with an online softmax, scores never stored.
 * 'gemm': per-head scores by the GEMM kernels, a masked softmax, then probabilities × values, in
 * windows of queries whose scores fit `scoreWindowBytes`. On lavapipe the flash kernel's
 * workgroup-memory reads make it a load per FMA (2.1–2.7 GFLOP/s on Stage C's attention), while
 * the register GEMM shares every loaded value across 32 rows.
 */
export type AttentionKernel = 'flash' | 'gemm';

export const SCORE_WINDOW_BYTES = 64 * 2 ** 20;

/**
 * The largest tensor of the 'gemm' kernel, per window of queries: probabilities [B·H, window, Lk
 * padded to a multiple of 4] (the window's scores take Lk columns). Activation estimates use it too.
 */
export function scoreWindowShape(
  batch: number, heads: number, lq: number, lk: number, bytesPerScore: number, windowBytes = SCORE_WINDOW_BYTES,
): [number, number, number] {
  const lk4 = Math.ceil(lk / 4) * 4;
  const window = Math.max(1, Math.min(lq, Math.floor(windowBytes / (batch * heads * lk4 * bytesPerScore))));
  return [batch * heads, window, lk4];
}

// Measured on an H100 (Dawn, Vulkan) at Stage B's 2 × 10 heads × 4096 queries × 4173 keys: 64×16
// took 4.5 ms, 64×32 5.1 ms, 32×32 9.5 ms; 128 queries per workgroup gained 2% there but runs
// tens of times slower on lavapipe. Fewer keys per step only where workgroup memory is short.
const KEY_TILES = [16, 8, 4];

function workgroupBytes(tiles: AttentionTiles, headDim: number): number {
  return 2 * tiles.keys * headDim * 4 + tiles.keys * 4;
}

function chooseTiles(rt: Runtime, lq: number, headDim: number): AttentionTiles {
  const queries = lq <= 32 ? 32 : 64;
  const limit = rt.limits.maxComputeWorkgroupStorageSize;
  const keys = KEY_TILES.find((keys) => workgroupBytes({ queries, keys }, headDim) <= limit);
  if (keys === undefined) {
    throw new Error(`attention: head dim ${headDim} does not fit this device's workgroup memory (${limit} bytes)`);
  }
  return { queries, keys };
}

function checkTiles(rt: Runtime, tiles: AttentionTiles, headDim: number): void {
  const { queries, keys } = tiles;
  if (!Number.isInteger(queries) || queries < 1 || !Number.isInteger(keys) || keys < 4 || keys % 4) {
    throw new Error(
      `attention: tiles need a positive query count and a key count that is a multiple of 4; got ${queries} × ${keys}`,
    );
  }
  const bytes = workgroupBytes(tiles, headDim);
  const limit = rt.limits.maxComputeWorkgroupStorageSize;
  const invocations = Math.min(rt.limits.maxComputeInvocationsPerWorkgroup, rt.limits.maxComputeWorkgroupSizeX);
  if (bytes > limit || tiles.queries > invocations) {
    throw new Error(
      `attention: tiles of ${tiles.queries} queries × ${tiles.keys} keys need ${tiles.queries} invocations and ` +
        `${bytes} bytes of workgroup memory; this device allows ${invocations} and ${limit}`,
    );
  }
}

const shape = (t: Tensor) => `[${t.shape.join(', ')}]`;

/**
 * Multi-head scaled-dot-product attention on token-major tensors: q [B, Lq, H·D], k and v
 * [B, Lk, H·D] → [B, Lq, H·D], head h in channels h·D..(h+1)·D (the Linear projections' layout,
 * so no permutes are needed around it). Flash style: memory stays O(inputs) for any Lq × Lk.
 */
export function attention(rt: Runtime, q: Tensor, k: Tensor, v: Tensor, options: AttentionOptions): Tensor {
  const { heads, causal = false, keyPaddingMask: mask } = options;
  if (q.shape.length !== 3 || k.shape.length !== 3 || v.shape.length !== 3) {
    throw new Error(
      `attention: q, k and v must be [batch, tokens, heads·headDim]; got q ${shape(q)}, k ${shape(k)}, v ${shape(v)}`,
    );
  }
  const [batch, lq, channels] = q.shape;
  const lk = k.shape[1];
  const agree = (t: Tensor) => t.shape[0] === batch && t.shape[1] === lk && t.shape[2] === channels;
  if (!agree(k) || !agree(v)) {
    throw new Error(`attention: q ${shape(q)}, k ${shape(k)} and v ${shape(v)} disagree in batch, key count or channels`);
  }
  if (k.dtype !== q.dtype || v.dtype !== q.dtype) {
    throw new Error(`attention: q, k and v must share a dtype; got ${q.dtype}, ${k.dtype}, ${v.dtype}`);
  }
  if (!Number.isInteger(heads) || heads < 1 || channels % heads !== 0) {
    throw new Error(`attention: ${channels} channels do not split into ${heads} heads`);
  }
  const headDim = channels / heads;
  if (headDim % 4 !== 0) throw new Error(`attention: head dim ${headDim} is not a multiple of 4`);
  if (lq === 0 || lk === 0) throw new Error(`attention: needs at least one query and one key; got Lq ${lq}, Lk ${lk}`);
  if (mask && (mask.shape.length !== 2 || mask.shape[0] !== batch || mask.shape[1] !== lk)) {
    throw new Error(`attention: keyPaddingMask must be [${batch}, ${lk}]; got ${shape(mask)}`);
  }
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
  const kernel = options.kernel ?? (options.tiles || !deviceTraits(rt).cpuEmulated ? 'flash' : 'gemm');
  if (kernel === 'gemm') {
    if (options.tiles) throw new Error(`attention: tiles apply to the 'flash' kernel only`);
    const windowBytes = Math.min(options.scoreWindowBytes ?? SCORE_WINDOW_BYTES, rt.limits.maxStorageBufferBindingSize);
    return attentionByGemm(rt, q, k, v, { heads, scale, causal, mask, windowBytes });
  }
  if (options.scoreWindowBytes !== undefined) throw new Error(`attention: scoreWindowBytes applies to the 'gemm' kernel only`);

  const tiles = options.tiles ?? chooseTiles(rt, lq, headDim);
  checkTiles(rt, tiles, headDim);
  const qTiles = Math.ceil(lq / tiles.queries);
  const groups = batch * heads * qTiles;

  const result = rt.empty(q.shape, q.dtype, 'attention');
  rt.dispatch({
    kernel: {
      shader: 'attention.wgsl',
      flags: [...(causal ? ['CAUSAL'] : []), ...(mask ? ['PADDING_MASK'] : [])],
      consts: { D: headDim, BQ: tiles.queries, BK: tiles.keys },
      dtypes: { T: q.dtype, ...(mask ? { M: mask.dtype } : {}) },
    },
    label: 'attention',
    params: new Params().u32(groups, qTiles, heads, lq, lk).f32(scale * Math.LOG2E).data(),
    inputs: mask ? [q, k, v, mask] : [q, k, v],
    outputs: [result],
    workgroups: rt.grid(groups, 1),
    // The runtime's wait estimate counts work in elementwise outputs; one score (4·D flops) is
    // about that much GPU time at the head dims used here.
    work: batch * heads * lq * lk,
  });
  return result;
}

interface GemmAttention {
  heads: number;
  scale: number;
  causal: boolean;
  mask: Tensor | undefined;
  windowBytes: number;
}

/**
 * The 'gemm' kernel: heads split out as [B·H, L, D] so each product is one batched GEMM. Values
 * and probabilities are padded with zeros to a multiple of 4 keys, so P·V reads 4 keys at a time.
 */
function attentionByGemm(rt: Runtime, q: Tensor, k: Tensor, v: Tensor, { heads, scale, causal, mask, windowBytes }: GemmAttention): Tensor {
  const [batch, lq, channels] = q.shape;
  const lk = k.shape[1];
  const [, window, lk4] = scoreWindowShape(batch, heads, lq, lk, bytesPerElement(q.dtype), windowBytes);
  const headDim = channels / heads;
  const splitHeads = (t: Tensor, tokens: number, padded = tokens) =>
    permute(rt, t.reshape([batch, tokens, heads, headDim]), [0, 2, 1, 3], { dim: 2, size: padded }).reshape([
      batch * heads,
      padded,
      headDim,
    ]);
  const qh = splitHeads(q, lq);
  const kh = splitHeads(k, lk);
  const vh = splitHeads(v, lk, lk4);
  const oh = rt.empty([batch * heads, lq, headDim], q.dtype, 'attention.heads');
  for (let start = 0; start < lq; start += window) {
    const count = Math.min(window, lq - start);
    const scores = matmul(rt, qh, kh, { transposeB: true, alpha: scale, aRows: { start, count } });
    const probs = softmax(rt, scores, {
      outCols: lk4,
      masks: causal || mask ? { heads, queriesPerMatrix: count, firstQuery: start, causal, keyPaddingMask: mask } : undefined,
    });
    scores.dispose();
    matmul(rt, probs, vh, { into: { out: oh, rowStart: start } });
    probs.dispose();
  }
  for (const t of [qh, kh, vh]) t.dispose();
  const out = permute(rt, oh.reshape([batch, heads, lq, headDim]), [0, 2, 1, 3]).reshape([batch, lq, channels]);
  oh.dispose();
  return out;
}
