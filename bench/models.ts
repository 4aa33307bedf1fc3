/**
 * Per-component forward time at real size with random weights: the CLIP text encoders (bigG for
 * Stage C, ViT-H for Stage B; 77 tokens, batch 2), Stage C at 24×24 latents batch 2 (guidance on),
 * Stage B at a 512×512 image (128×128 latents, 12×12 effnet, batch 1: the decoder's default
 * guidance 0 runs no unconditional half) and the VQGAN decode of a 512×512 image.
 *
 * Each component gets its own Runtime, so the buffer pool's peak is that component's alone: weights,
 * inputs and the pool's high-water mark of activations. Effective GFLOP/s divide the analytic count
 * (flops.ts) by the steady-state forward time. Quick runs (the default) keep only a few repeated
 * blocks; the low-memory estimate then adds the left-out weights back at their pool size.
 */
import { Runtime } from '../src/runtime/device.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';
import { clipTextEncoder, stageB, stageC, vqganDecoder, type SyntheticComponent } from './synthetic_models.js';
import { timeForward } from './timing.js';

interface Measured {
  name: string;
  /** Pool bytes after loading (weights and inputs), plus what a quick run left out. */
  fullWeights: number;
  /** Pool high-water mark above the loaded weights. */
  activations: number;
}

const mb = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MB`;

async function components(full: boolean): Promise<SyntheticComponent[]> {
  return [
    await clipTextEncoder('CLIP-bigG text encoder (stage C)', 'text_encoder_prior_bigG.json', full ? undefined : 4),
    await stageC(full ? undefined : 2),
    await clipTextEncoder('CLIP-ViT-H text encoder (stage B)', 'text_encoder_decoder_vitH.json', full ? undefined : 4),
    await stageB(full ? undefined : [1, 1, 1, 1]),
    await vqganDecoder(full ? undefined : 2),
  ];
}

async function benchComponent(component: SyntheticComponent, options: BenchOptions, measured: Measured[]): Promise<BenchRow> {
  const rt = await Runtime.create();
  try {
    const start = performance.now();
    const model = await component.load(rt, options.dtype);
    await rt.sync();
    const loadMs = performance.now() - start;
    const weights = rt.pool.stats().bytesAllocated;
    const { firstMs, ms, recordMs } = await timeForward(rt, model.forward, options.runs);
    const peakBytes = rt.pool.stats().peakBytesAllocated;
    model.dispose();
    measured.push({
      name: component.name,
      fullWeights: weights + component.leftOutBytes(rt, options.dtype),
      activations: peakBytes - weights,
    });
    return {
      suite: 'models',
      name: component.name,
      shape: component.shape,
      dtype: rt.storageDType(options.dtype),
      loadMs,
      firstMs,
      ms,
      recordMs,
      gflops: component.flops / ms / 1e6,
      peakBytes,
      note: [component.reduced, `weights ${mb(weights)}`, `${(component.flops / 1e9).toFixed(0)} GFLOP`].filter(Boolean).join('; '),
    };
  } finally {
    rt.destroy();
  }
}

/**
 * Low-memory mode holds one pipeline stage at a time: its text encoder and models stay loaded while
 * they run one after another, so the stage's peak is about all their weights plus the largest
 * activation peak among them (if the later models reuse the earlier ones' freed buffers).
 */
function lowMemoryEstimate(stage: string, parts: Measured[], dtype: string, full: boolean): BenchRow {
  const weights = parts.reduce((sum, p) => sum + p.fullWeights, 0);
  const activations = Math.max(...parts.map((p) => p.activations));
  return {
    suite: 'models',
    name: `low-memory peak estimate: ${stage}`,
    shape: full ? 'full size' : 'full-size weights, activations of the reduced models',
    dtype,
    peakBytes: weights + activations,
    note: `weights ${mb(weights)} (${parts.map((p) => p.name.split(' (')[0]).join(' + ')}) + largest activation peak ${mb(activations)}`,
  };
}

export async function benchModels(_rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const measured: Measured[] = [];
  for (const component of await components(options.full)) {
    rows.push(await benchComponent(component, options, measured));
    console.log(`  ${component.name}: ${rows[rows.length - 1].ms!.toFixed(0)} ms`);
  }
  const dtype = rows[0].dtype;
  rows.push(lowMemoryEstimate('prior stage', measured.slice(0, 2), dtype, options.full));
  rows.push(lowMemoryEstimate('decoder stage', measured.slice(2), dtype, options.full));
  return rows;
}
