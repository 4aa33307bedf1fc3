import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TorchGenerator } from '../src/pipeline/torch_generator.js';
import type { Runtime } from '../src/runtime/device.js';
import { getRuntime } from './helpers/gpu.js';
import { loadTinyPipelines, type TinyPipelines } from './helpers/tiny_pipelines.js';

// Repeated generations must not grow device or host memory: 20 tiny text-to-image runs (prior and
// decoder, 2 steps each, with guidance) on one pair of pipelines.
const RUNS = 20;
/** Runs before measuring: the first generations fill the pool and the kernel and tokenizer caches. */
const WARM_UP = 3;
/** Host heap growth tolerated over the measured runs (GC is not exact). */
const HEAP_SLACK_BYTES = 4 << 20;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

let rt: Runtime;
let tiny: TinyPipelines;

beforeAll(async () => {
  rt = await getRuntime();
  tiny = await loadTinyPipelines(rt);
});

afterAll(() => tiny?.dispose());

async function generate(seed: number): Promise<readonly number[]> {
  const generator = new TorchGenerator(seed);
  const embeddings = await tiny.prior.call({ prompt: `a cat, take ${seed}`, negativePrompt: 'blurry', height: 128, width: 256, numInferenceSteps: 2, guidanceScale: 4, generator });
  const images = await tiny.decoder.call({ imageEmbeddings: embeddings, prompt: `a cat, take ${seed}`, numInferenceSteps: 2, generator });
  embeddings.dispose();
  return images.shape;
}

describe('no leaks over repeated generations', () => {
  it(`${RUNS} tiny generations: device buffers and bytes constant after warm-up, host heap flat`, async () => {
    const samples: { live: number; bytes: number; created: number; heap: number }[] = [];
    for (let run = 0; run < RUNS; run++) {
      expect(await generate(run)).toEqual([1, 3, 128, 256]);
      await rt.sync();
      gc();
      const { live, bytesAllocated, created } = rt.pool.stats();
      samples.push({ live, bytes: bytesAllocated, created, heap: process.memoryUsage().heapUsed });
    }
    const measured = samples.slice(WARM_UP);
    const first = measured[0];
    console.log(
      `leaks: ${RUNS} generations; after warm-up live buffers ${first.live}, pool bytes ${first.bytes}, buffers created ${first.created}; ` +
        `heap ${(first.heap / 2 ** 20).toFixed(1)} → ${(measured.at(-1)!.heap / 2 ** 20).toFixed(1)} MiB`,
    );
    for (const s of measured) expect({ live: s.live, bytes: s.bytes, created: s.created }).toEqual({ live: first.live, bytes: first.bytes, created: first.created });
    expect(measured.at(-1)!.heap - first.heap).toBeLessThan(HEAP_SLACK_BYTES);
  }, 180_000);
});
