/**
 * GEMM timings on Würstchen's real shapes: Stage C's channel-wise MLP (1152 tokens = 2 × 24 × 24
 * with classifier-free guidance, 1536 ↔ 6144), the VQGAN MLP at 256×256 (384 ↔ 1536) and a CLIP
 * MLP at 77 tokens × 2. Stage C's shapes also run with every kernel variant forced, so the tile rule
 * in src/ops/matmul.ts can be checked against measurements.
 */
import { chooseVariant, linear, type Activation, type MatmulVariant } from '../src/ops/matmul.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import type { Tensor } from '../src/runtime/tensor.js';
import type { BenchRow } from './report.js';

interface GemmCase {
  name: string;
  m: number;
  k: number;
  n: number;
  act?: Activation;
  residual?: boolean;
  /** Also time every forced variant. */
  allVariants?: boolean;
}

const CASES: GemmCase[] = [
  { name: 'stage C channelwise fc1 + GELU', m: 1152, k: 1536, n: 6144, act: 'gelu', allVariants: true },
  { name: 'stage C channelwise fc2 + residual', m: 1152, k: 6144, n: 1536, residual: true, allVariants: true },
  { name: 'VQGAN MLP fc1 + GELU (256×256)', m: 65536, k: 384, n: 1536, act: 'gelu' },
  { name: 'VQGAN MLP fc2 + residual (256×256)', m: 65536, k: 1536, n: 384, residual: true },
  { name: 'CLIP-bigG MLP fc1 + GELU (2 × 77 tokens)', m: 154, k: 1280, n: 5120, act: 'gelu' },
];

const VARIANTS: Required<MatmulVariant>[] = [
  { tile: 'large', vec4: true },
  { tile: 'large', vec4: false },
  { tile: 'small', vec4: true },
  { tile: 'small', vec4: false },
];

/** Waits for the GPU without the runtime's learned sleep, which would add to the measured time. */
async function settle(rt: Runtime): Promise<void> {
  rt.flush();
  await rt.device.queue.onSubmittedWorkDone();
  rt.checkErrors();
}

/** Best of 3 batches of back-to-back runs, in ms per run; the first run (compilation) is untimed. */
async function msPerRun(rt: Runtime, run: () => void): Promise<number> {
  run();
  await settle(rt);
  let t0 = performance.now();
  run();
  await settle(rt);
  const reps = Math.max(3, Math.min(50, Math.ceil(200 / (performance.now() - t0))));
  let best = Infinity;
  for (let trial = 0; trial < 3; trial++) {
    t0 = performance.now();
    for (let i = 0; i < reps; i++) run();
    await settle(rt);
    best = Math.min(best, (performance.now() - t0) / reps);
  }
  return best;
}

/** Cheap deterministic values in [-0.5, 0.5): timing does not depend on them, only finiteness. */
function pattern(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = ((i * 0.6180339887 + seed * 0.31) % 1) - 0.5;
  return out;
}

async function benchCase(rt: Runtime, c: GemmCase, dtype: DType): Promise<BenchRow[]> {
  // Rows per launch so every binding fits the device (the VQGAN hidden layer can exceed it in f32).
  const bytes = dtype === 'f16' && rt.hasF16 ? 2 : 4;
  const limit = rt.limits.maxStorageBufferBindingSize;
  const rows = Math.min(c.m, Math.floor(limit / (Math.max(c.k, c.n) * bytes) / 64) * 64);
  const launches = Math.ceil(c.m / rows);
  const x = rt.upload(pattern(rows * c.k, 1), [rows, c.k], dtype, 'bench.x');
  const w = rt.upload(pattern(c.n * c.k, 2).map((v) => v / Math.sqrt(c.k)), [c.n, c.k], dtype, 'bench.w');
  const b = rt.upload(pattern(c.n, 3), [c.n], dtype, 'bench.b');
  const residual = c.residual ? rt.upload(pattern(rows * c.n, 4), [rows, c.n], dtype, 'bench.r') : undefined;
  const out = rt.empty([rows, c.n], dtype, 'bench.out');
  const shape = `${c.m}x${c.k}x${c.n}`;
  const flops = 2 * c.m * c.k * c.n;
  const chosen = chooseVariant(rows, c.n, c.k, 1, true);
  const variants: (MatmulVariant | undefined)[] = [undefined, ...(c.allVariants ? VARIANTS : [])];
  const result: BenchRow[] = [];
  for (const variant of variants) {
    const ms =
      launches *
      (await msPerRun(rt, () => {
        linear(rt, x, w, b, { act: c.act, residual, out, variant });
      }));
    const v = variant ?? chosen;
    result.push({
      suite: 'ops',
      name: `${c.name}${variant ? '' : ' (rule)'}`,
      shape,
      dtype: x.dtype,
      ms,
      gflops: flops / ms / 1e6,
      note: `${v.tile} tile, ${v.vec4 ? 'vec4' : 'scalar'} loads${launches > 1 ? `, ${launches} launches of ${rows} rows` : ''}`,
    });
  }
  for (const t of [x, w, b, residual, out] as (Tensor | undefined)[]) t?.dispose();
  return result;
}

/** Times every case in f32 and (where the adapter stores f16) f16. */
export async function benchMatmul(rt: Runtime): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const dtype of rt.hasF16 ? (['f32', 'f16'] as const) : (['f32'] as const)) {
    for (const c of CASES) rows.push(...(await benchCase(rt, c, dtype)));
  }
  return rows;
}
