import type { Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { Params } from '../runtime/uniform_arena.js';

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
  /** Tile sizes, normally chosen from the shape; tests and benchmarks set them to force a variant. */
  tiles?: AttentionTiles;
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
  const tiles = options.tiles ?? chooseTiles(rt, lq, headDim);
  checkTiles(rt, tiles, headDim);
  const scale = options.scale ?? 1 / Math.sqrt(headDim);
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
