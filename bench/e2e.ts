/**
 * End to end on the tiny random-weight pipelines of test/fixtures/pipelines (the real tokenizer
 * and the real pipeline code, tiny models): seconds per generation with diffusers' combined-pipeline
 * defaults (prior 60 steps at guidance 4, decoder 12 steps at guidance 0, one image) at 512×512
 * (1024×1024 with --full), with all stages resident and in low-memory mode, each on its own
 * Runtime so the peak is that mode's alone. The tiny models make the times mostly per-step and
 * per-dispatch overhead: they measure the machinery, not the arithmetic.
 */
import { fileURLToPath } from 'node:url';
import { WuerstchenPipeline } from '../src/pipeline/pipeline_wuerstchen_combined.js';
import { TorchGenerator } from '../src/pipeline/torch_generator.js';
import { Runtime } from '../src/runtime/device.js';
import type { BenchOptions } from './options.js';
import type { BenchRow } from './report.js';

const fixture = (name: string) => fileURLToPath(new URL(`../test/fixtures/pipelines/${name}`, import.meta.url));

async function benchMode(lowMemory: boolean, size: number, options: BenchOptions): Promise<BenchRow> {
  const rt = await Runtime.create();
  try {
    const start = performance.now();
    const pipeline = await WuerstchenPipeline.fromPretrained(rt, fixture('wuerstchen-prior'), fixture('wuerstchen'), {
      dtype: options.dtype,
      lowMemory,
    });
    const loadMs = performance.now() - start;
    const generate = async () => {
      const t0 = performance.now();
      await pipeline.generate({ prompt: 'an astronaut riding a horse, digital art', height: size, width: size, generator: new TorchGenerator(7) });
      return performance.now() - t0;
    };
    const firstMs = await generate();
    const times: number[] = [];
    for (let i = 0; i < options.runs; i++) times.push(await generate());
    times.sort((a, b) => a - b);
    const peakBytes = rt.pool.stats().peakBytesAllocated;
    pipeline.dispose();
    return {
      suite: 'e2e',
      name: `tiny pipelines${lowMemory ? ', low-memory mode' : ''}`,
      shape: `${size}×${size}, 60 + 12 steps`,
      dtype: rt.storageDType(options.dtype),
      loadMs,
      firstMs,
      ms: times[Math.floor(times.length / 2)],
      peakBytes,
      note: lowMemory ? 'each stage loaded when it runs (load time inside every generation)' : undefined,
    };
  } finally {
    rt.destroy();
  }
}

export async function benchEndToEnd(_rt: Runtime, options: BenchOptions): Promise<BenchRow[]> {
  const size = options.full ? 1024 : 512;
  return [await benchMode(false, size, options), await benchMode(true, size, options)];
}
