/**
 * GEMM timings on Würstchen's real shapes: Stage C's channel-wise MLP (1152 tokens = 2 × 24 × 24
 * with classifier-free guidance, 1536 ↔ 6144), the VQGAN bottleneck MLP (384 ↔ 1536) at 256×256
 * tokens (a 1024² decode; quick runs: 128×128, a 512² decode) and a CLIP MLP at 77 tokens × 2.
 * With --full, Stage C's and CLIP's shapes also run with every kernel variant forced (and candidate
 * tiles), so the tile rule in src/ops/matmul.ts can be checked against measurements.
 */
import { deviceTraits } from '../src/ops/device_traits.js';
import { chooseVariant, linear, type FusedActivation, type MatmulVariant } from '../src/ops/matmul.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import type { Tensor } from '../src/runtime/tensor.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';
import { msPerRun, pattern } from './timing.js';

interface GemmCase {
  name: string;
  m: number;
  k: number;
  n: number;
  act?: FusedActivation;
  residual?: boolean;
  /** Also time every forced variant. */
  allVariants?: boolean;
}

function cases(full: boolean): GemmCase[] {
  const side = full ? 256 : 128;
  return [
    { name: 'stage C channelwise fc1 + GELU', m: 1152, k: 1536, n: 6144, act: 'gelu', allVariants: true },
    { name: 'stage C channelwise fc2 + residual', m: 1152, k: 6144, n: 1536, residual: true, allVariants: true },
    { name: `VQGAN MLP fc1 + GELU (${side}×${side})`, m: side * side, k: 384, n: 1536, act: 'gelu' },
    { name: `VQGAN MLP fc2 + residual (${side}×${side})`, m: side * side, k: 1536, n: 384, residual: true },
    { name: 'CLIP-bigG MLP fc1 + GELU (2 × 77 tokens)', m: 154, k: 1280, n: 5120, act: 'gelu', allVariants: true },
  ];
}

const VARIANTS: MatmulVariant[] = [
  { tile: 'large', vec4: true },
  { tile: 'large', vec4: false },
  { tile: 'small', vec4: true },
  { tile: 'small', vec4: false },
  { tile: 'wide', vec4: true },
  // Eight rows and eight columns per thread (128×128), measured slower on an H100: kept for other GPUs.
  { tile: { WG_M: 16, WG_N: 16, RM: 8, CN: 8, TK: 16 }, vec4: true },
  { kernel: 'register', vec4: true },
  { kernel: 'register', vec4: false },
];

function describe(v: MatmulVariant): string {
  const loads = v.vec4 ? 'vec4' : 'scalar';
  if (v.kernel === 'register') return `register kernel, ${loads} loads`;
  if (typeof v.tile === 'object') {
    const { WG_M, WG_N, RM, CN = 4, TK } = v.tile;
    return `${RM * WG_M}×${CN * WG_N} tile (${RM}×${CN} per thread, K step ${TK}), ${loads} loads`;
  }
  return `${v.tile} tile, ${loads} loads`;
}

async function benchCase(rt: Runtime, c: GemmCase, dtype: DType, options: BenchOptions): Promise<BenchRow[]> {
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
  const chosen = chooseVariant(deviceTraits(rt), rows, c.n, c.k, 1, true);
  const variants: (MatmulVariant | undefined)[] = [undefined, ...(c.allVariants && options.full ? VARIANTS : [])];
  const result: BenchRow[] = [];
  for (const variant of variants) {
    const run = () => {
      linear(rt, x, w, b, { act: c.act, residual, out, variant });
    };
    if (variant) {
      try {
        run();
      } catch (err) {
        // A forced variant this device cannot run (the register kernel needs one fixed subgroup size).
        console.log(`  ${c.name}, ${describe(variant)}: skipped (${(err as Error).message})`);
        continue;
      }
    }
    const ms = launches * (await msPerRun(rt, run, { trials: options.full ? 3 : 1 }));
    result.push({
      suite: 'ops',
      name: `${c.name}${variant ? '' : ' (rule)'}`,
      shape,
      dtype: x.dtype,
      ms,
      gflops: flops / ms / 1e6,
      note: `${describe(variant ?? chosen)}${launches > 1 ? `, ${launches} launches of ${rows} rows` : ''}`,
    });
  }
  for (const t of [x, w, b, residual, out] as (Tensor | undefined)[]) t?.dispose();
  return result;
}

/** Times every case in f32 and (where the adapter stores f16) f16. */
export async function benchMatmul(rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const dtype of rt.hasF16 ? (['f32', 'f16'] as const) : (['f32'] as const)) {
    for (const c of cases(options.full)) rows.push(...(await benchCase(rt, c, dtype, options)));
  }
  return rows;
}
