/**
 * Attention timings on Würstchen's real shapes (1024×1024 images): Stage C's self+cross attention
 * (24 heads × 64 over the 576 latent tokens, keys = 576 + 77 text tokens, batch 2 with
 * classifier-free guidance), Stage B's level-1 attention (10 heads × 64, 64×64 = 4096 queries,
 * 4096 + 77 keys, batch 1: the decoder's default guidance 0 needs no unconditional half) and CLIP
 * bigG's causal self-attention (20 heads × 64 over 77 tokens, batch 2).
 */
import { attention, type AttentionKernel } from '../src/ops/attention.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';
import { msPerRun, pattern } from './timing.js';

export interface AttentionCase {
  name: string;
  batch: number;
  heads: number;
  headDim: number;
  queries: number;
  keys: number;
  causal?: boolean;
}

export const ATTENTION_CASES: AttentionCase[] = [
  { name: 'stage C attention (24×24 latent + 77 text)', batch: 2, heads: 24, headDim: 64, queries: 576, keys: 653 },
  { name: 'stage B level 1 attention (64×64 + 77 text)', batch: 1, heads: 10, headDim: 64, queries: 4096, keys: 4173 },
  { name: 'CLIP-bigG causal self-attention', batch: 2, heads: 20, headDim: 64, queries: 77, keys: 77, causal: true },
];

/** q·kᵀ and p·v: 2 multiply-adds per query, key and head channel (causal masking not discounted). */
export function attentionFlops(c: AttentionCase): number {
  return 4 * c.batch * c.heads * c.queries * c.keys * c.headDim;
}

/** The rule's kernel, then (with --full) each kernel forced, so the rule can be checked on a new device. */
async function benchCase(rt: Runtime, c: AttentionCase, dtype: DType, options: BenchOptions): Promise<BenchRow[]> {
  const channels = c.heads * c.headDim;
  const q = rt.upload(pattern(c.batch * c.queries * channels, 1), [c.batch, c.queries, channels], dtype, 'bench.q');
  const k = rt.upload(pattern(c.batch * c.keys * channels, 2), [c.batch, c.keys, channels], dtype, 'bench.k');
  const v = rt.upload(pattern(c.batch * c.keys * channels, 3), [c.batch, c.keys, channels], dtype, 'bench.v');
  const kernels: (AttentionKernel | undefined)[] = [undefined, ...(options.full ? (['flash', 'gemm'] as const) : [])];
  const rows: BenchRow[] = [];
  for (const kernel of kernels) {
    const ms = await msPerRun(rt, () => attention(rt, q, k, v, { heads: c.heads, causal: c.causal, kernel }).dispose(), {
      trials: options.full ? 3 : 1,
    });
    rows.push({
      suite: 'ops',
      name: `${c.name}${kernel ? `, ${kernel} kernel` : ' (rule)'}`,
      shape: `b${c.batch} h${c.heads}×${c.headDim} q${c.queries} k${c.keys}`,
      dtype: q.dtype,
      ms,
      gflops: attentionFlops(c) / ms / 1e6,
      note: c.causal ? 'causal; FLOPs counted dense' : undefined,
    });
  }
  for (const t of [q, k, v]) t.dispose();
  return rows;
}

export async function benchAttention(rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const dtype of rt.hasF16 ? (['f32', 'f16'] as const) : (['f32'] as const)) {
    for (const c of ATTENTION_CASES) rows.push(...(await benchCase(rt, c, dtype, options)));
  }
  return rows;
}
