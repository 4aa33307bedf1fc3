import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TorchGenerator } from '../src/pipeline/torch_generator.js';
import type { Runtime } from '../src/runtime/device.js';
import { getRuntime } from './helpers/gpu.js';
import { loadTinyPipelines, type TinyPipelines } from './helpers/tiny_pipelines.js';

// Every denoising step after the first few records the same work as the one before it: the same
// dispatches on the same buffers, so it creates no buffers, bind groups or pipelines.
let rt: Runtime;
let tiny: TinyPipelines;

beforeAll(async () => {
  rt = await getRuntime();
  tiny = await loadTinyPipelines(rt);
});

afterAll(() => tiny?.dispose());

interface StepCost {
  dispatches: number;
  bindGroups: number;
  buffers: number;
  pipelines: number;
}

/** What each step cost, from the counters before and after it. */
function stepCosts(): { callback: () => void; costs: StepCost[] } {
  const counters = () => ({
    dispatches: rt.recorder.dispatches,
    bindGroups: rt.recorder.bindGroupsCreated,
    buffers: rt.pool.stats().created,
    pipelines: rt.kernels.size,
  });
  let last = counters();
  const costs: StepCost[] = [];
  return {
    costs,
    callback: () => {
      const now = counters();
      costs.push({
        dispatches: now.dispatches - last.dispatches,
        bindGroups: now.bindGroups - last.bindGroups,
        buffers: now.buffers - last.buffers,
        pipelines: now.pipelines - last.pipelines,
      });
      last = now;
    },
  };
}

describe('denoising steps repeat one plan', () => {
  it('prior (guidance 4) and decoder: steps 4 to 6 create no buffers, bind groups or pipelines', async () => {
    const generator = new TorchGenerator(3);
    const priorSteps = stepCosts();
    const embeddings = await tiny.prior.call({
      prompt: 'a cat', height: 128, width: 128, numInferenceSteps: 6, guidanceScale: 4, generator, callback: priorSteps.callback,
    });
    const decoderSteps = stepCosts();
    const images = await tiny.decoder.call({
      imageEmbeddings: embeddings, prompt: 'a cat', numInferenceSteps: 6, generator, callback: decoderSteps.callback,
    });
    embeddings.dispose();
    expect(images.shape).toEqual([1, 3, 128, 128]);
    for (const { costs } of [priorSteps, decoderSteps]) {
      expect(costs).toHaveLength(6);
      // The first step also encodes the prompt and compiles; the free buffers settle over two more.
      const steady = costs.slice(3);
      expect(steady).toEqual(steady.map(() => ({ dispatches: costs[1].dispatches, bindGroups: 0, buffers: 0, pipelines: 0 })));
    }
  });
});

describe('precompile', () => {
  it('compiles the kernels a piece of work dispatches, records nothing and frees what it made', async () => {
    const { add } = await import('../src/ops/elementwise.js');
    const x = rt.upload([1, 2, 3], [3], 'f16');
    const before = { dispatches: rt.recorder.dispatches, live: rt.pool.stats().live, kernels: rt.kernels.size };
    const compiled = await rt.precompile(() => add(rt, add(rt, x, x), x));
    expect(rt.recorder.dispatches).toBe(before.dispatches);
    expect(rt.pool.stats().live).toBe(before.live);
    expect(rt.kernels.size).toBe(before.kernels + compiled);
    expect(await rt.precompile(() => add(rt, x, x))).toBe(0);
    const y = add(rt, x, x);
    expect(rt.kernels.size).toBe(before.kernels + compiled);
    expect(Array.from(await rt.read(y))).toEqual([2, 4, 6]);
    await expect(rt.precompile(() => rt.read(x))).rejects.toThrow('precompile: the recorded work must not read tensors back');
    for (const t of [x, y]) t.dispose();
  });
});
