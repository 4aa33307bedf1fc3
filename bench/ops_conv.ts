/**
 * The convolutions that run as implicit GEMMs, on their real shapes: Stage B's k2 s2 down- and
 * up-samplers between levels 0 and 1 (512² image: 128² latent, 320 ↔ 640 channels) and the VQGAN
 * decoder's ConvTranspose2d k4 s2 p1 (384 → 192 channels, 128² → 256², 512² decode). `--full` adds
 * every tile the device allows.
 */
import { conv2d } from '../src/ops/conv2d.js';
import type { ConvTile } from '../src/ops/conv_gemm.js';
import { convTranspose2d } from '../src/ops/conv_transpose2d.js';
import { deviceTraits, registerTilesFit } from '../src/ops/device_traits.js';
import type { Runtime } from '../src/runtime/device.js';
import type { DType } from '../src/runtime/dtype.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';
import { msPerRun, pattern } from './timing.js';

interface ConvCase {
  name: string;
  transposed: boolean;
  /** NHWC input. */
  input: [number, number, number, number];
  outChannels: number;
  kernel: number;
  stride: number;
  padding: number;
}

const CASES: ConvCase[] = [
  { name: 'stage B down-sampler k2 s2 (level 0 → 1)', transposed: false, input: [1, 128, 128, 320], outChannels: 640, kernel: 2, stride: 2, padding: 0 },
  { name: 'stage B up-sampler ConvTranspose2d k2 s2 (level 1 → 0)', transposed: true, input: [1, 64, 64, 640], outChannels: 320, kernel: 2, stride: 2, padding: 0 },
  { name: 'VQGAN ConvTranspose2d k4 s2 p1 (512² decode)', transposed: true, input: [1, 128, 128, 384], outChannels: 192, kernel: 4, stride: 2, padding: 1 },
];

/** Multiply-adds of the convolution as computed (a transposed one: every input pixel × every tap). */
function convFlops(c: ConvCase): number {
  const [b, h, w, cin] = c.input;
  const taps = c.kernel * c.kernel;
  if (c.transposed) return 2 * b * h * w * cin * c.outChannels * taps;
  const oh = Math.floor((h + 2 * c.padding - c.kernel) / c.stride) + 1;
  const ow = Math.floor((w + 2 * c.padding - c.kernel) / c.stride) + 1;
  return 2 * b * oh * ow * c.outChannels * cin * taps;
}

async function benchCase(rt: Runtime, c: ConvCase, dtype: DType, tile: ConvTile | undefined, options: BenchOptions): Promise<BenchRow> {
  const cin = c.input[3];
  const x = rt.upload(pattern(c.input.reduce((a, b) => a * b, 1), 1), c.input, dtype, 'bench.x');
  // Tap-major weights [kH, kW, Cout, Cin] (transposed: the same layout, see prepareConvTranspose2dWeight).
  const weight = rt.upload(pattern(c.kernel * c.kernel * c.outChannels * cin, 2), [c.kernel, c.kernel, c.outChannels, cin], dtype, 'bench.w');
  const bias = rt.upload(pattern(c.outChannels, 3), [c.outChannels], dtype, 'bench.b');
  const opts = { stride: c.stride, padding: c.padding, tile };
  const run = c.transposed ? () => convTranspose2d(rt, x, weight, bias, opts) : () => conv2d(rt, x, weight, bias, opts);
  const ms = await msPerRun(rt, () => run().dispose(), { trials: options.full ? 3 : 1 });
  for (const t of [x, weight, bias]) t.dispose();
  return {
    suite: 'ops',
    name: c.name,
    shape: `${c.input.join('x')} → ${c.outChannels}`,
    dtype: x.dtype,
    ms,
    gflops: convFlops(c) / ms / 1e6,
    note: tile ? `${tile} tile` : undefined,
  };
}

export async function benchConv(rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  const tiles: (ConvTile | undefined)[] = options.full
    ? ['tall', 'large', 'small', ...(registerTilesFit(deviceTraits(rt)) ? (['register'] as const) : [])]
    : [undefined];
  const rows: BenchRow[] = [];
  for (const dtype of rt.hasF16 ? (['f32', 'f16'] as const) : (['f32'] as const)) {
    for (const c of CASES) {
      for (const tile of tiles) rows.push(await benchCase(rt, c, dtype, tile, options));
    }
  }
  return rows;
}
