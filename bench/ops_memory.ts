/**
 * Bandwidth-bound ops on the models' real NHWC shapes: the depthwise 3×3 convs, LayerNorm and
 * GlobalResponseNorm. GB/s counts the least traffic each op needs: input read once and output
 * written once (GRN reads its input twice: once for the norms, once to apply them).
 */
import { conv2d } from '../src/ops/conv2d.js';
import { globalResponseNorm } from '../src/ops/grn.js';
import { layerNorm } from '../src/ops/layer_norm.js';
import type { Runtime } from '../src/runtime/device.js';
import { bytesPerElement, type DType } from '../src/runtime/dtype.js';
import type { Tensor } from '../src/runtime/tensor.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';
import { msPerRun, pattern } from './timing.js';

type Op = 'depthwise' | 'depthwise replicate' | 'layer norm' | 'GRN';

interface MemoryCase {
  name: string;
  op: Op;
  /** NHWC, or [B, L, C] for the text encoder. */
  shape: number[];
  /** LayerNorm's affine parameters: f32 (VQGAN's modulation) or in the model dtype (CLIP). */
  affine?: 'f32' | 'model';
}

const CASES: MemoryCase[] = [
  { name: 'stage B level 0 depthwise 3×3 (1024² image)', op: 'depthwise', shape: [1, 128, 128, 320] },
  { name: 'stage C depthwise 3×3', op: 'depthwise', shape: [2, 24, 24, 1536] },
  { name: 'VQGAN depthwise 3×3, replicate pad (512² decode)', op: 'depthwise replicate', shape: [1, 128, 128, 384] },
  { name: 'stage B level 0 LayerNorm', op: 'layer norm', shape: [1, 128, 128, 320] },
  { name: 'stage C LayerNorm', op: 'layer norm', shape: [2, 24, 24, 1536] },
  { name: 'VQGAN modulated LayerNorm (512² decode)', op: 'layer norm', shape: [1, 128, 128, 384], affine: 'f32' },
  { name: 'CLIP-bigG LayerNorm', op: 'layer norm', shape: [2, 77, 1280], affine: 'model' },
  { name: 'stage B level 0 GRN', op: 'GRN', shape: [1, 128, 128, 1280] },
  { name: 'stage C GRN', op: 'GRN', shape: [2, 24, 24, 6144] },
];

async function benchCase(rt: Runtime, c: MemoryCase, dtype: DType, options: BenchOptions): Promise<BenchRow> {
  const channels = c.shape[c.shape.length - 1];
  const x = rt.upload(pattern(c.shape.reduce((a, b) => a * b, 1), 1), c.shape, dtype, 'bench.x');
  const params: Tensor[] = [];
  const param = (shape: number[], seed: number, pDtype: DType = dtype) => {
    const t = rt.upload(pattern(shape.reduce((a, b) => a * b, 1), seed), shape, pDtype, 'bench.param');
    params.push(t);
    return t;
  };
  let run: () => Tensor;
  let flopsPerElement = 0;
  let passes = 2;
  if (c.op === 'depthwise' || c.op === 'depthwise replicate') {
    const weight = param([3, 3, channels, 1], 2);
    const bias = param([channels], 3);
    const paddingMode = c.op === 'depthwise replicate' ? 'replicate' : 'zeros';
    run = () => conv2d(rt, x, weight, bias, { padding: 1, groups: channels, paddingMode });
    flopsPerElement = 2 * 9;
  } else if (c.op === 'GRN') {
    const gamma = param([channels], 2);
    const beta = param([channels], 3);
    run = () => globalResponseNorm(rt, x, gamma, beta);
    passes = 3;
  } else {
    const pDtype = c.affine === 'f32' ? 'f32' : dtype;
    const affine = c.affine ? { weight: param([channels], 2, pDtype), bias: param([channels], 3, pDtype) } : {};
    run = () => layerNorm(rt, x, { eps: 1e-6, ...affine });
  }
  const ms = await msPerRun(rt, () => run().dispose(), { trials: options.full ? 3 : 1 });
  const bytes = passes * x.size * bytesPerElement(x.dtype);
  for (const t of [x, ...params]) t.dispose();
  return {
    suite: 'ops',
    name: c.name,
    shape: c.shape.join('x'),
    dtype: x.dtype,
    ms,
    gflops: flopsPerElement ? (flopsPerElement * x.size) / ms / 1e6 : undefined,
    gbps: bytes / ms / 1e6,
  };
}

export async function benchMemoryOps(rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  for (const dtype of rt.hasF16 ? (['f32', 'f16'] as const) : (['f32'] as const)) {
    for (const c of CASES) rows.push(await benchCase(rt, c, dtype, options));
  }
  return rows;
}
