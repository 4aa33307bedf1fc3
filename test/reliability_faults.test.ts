import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PipelineDump } from '../src/pipeline/pipeline_dump.js';
import { WuerstchenDecoderPipeline } from '../src/pipeline/pipeline_wuerstchen.js';
import { WuerstchenPriorPipeline, type PriorCallOptions } from '../src/pipeline/pipeline_wuerstchen_prior.js';
import { TorchGenerator } from '../src/pipeline/torch_generator.js';
import { writeFileAtomic } from '../src/platform/file.js';
import { DeviceLostError } from '../src/platform/gpu.js';
import { GpuOutOfMemoryError, Runtime } from '../src/runtime/device.js';
import { getRuntime } from './helpers/gpu.js';

// GPU faults, cancellation, concurrent calls and interrupted writes: each ends in a typed error or
// a clean result, frees what it allocated, and leaves no half-written file.
const DIR = fileURLToPath(new URL('./fixtures/pipelines/', import.meta.url));
const PRIOR = `${DIR}wuerstchen-prior`;
const DECODER = `${DIR}wuerstchen`;
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

const request = (options: Partial<PriorCallOptions> = {}): PriorCallOptions => ({
  prompt: 'a cat',
  height: 128,
  width: 128,
  numInferenceSteps: 3,
  guidanceScale: 4,
  generator: new TorchGenerator(7),
  ...options,
});

const failure = (promise: Promise<unknown>) =>
  promise.then(
    () => new Error('no error'),
    (err: Error) => err,
  );

/** A runtime of the test's own: these tests break their device on purpose. */
async function brokenRuntimeTest(fn: (rt: Runtime) => Promise<void>): Promise<void> {
  const rt = await Runtime.create();
  try {
    await fn(rt);
  } finally {
    rt.destroy();
  }
}

describe('GPU faults become typed errors naming where they happened', () => {
  it('device loss during the prior: DeviceLostError with stage, step and op; buffers freed; later calls say to recreate', () =>
    brokenRuntimeTest(async (rt) => {
      const prior = await WuerstchenPriorPipeline.fromPretrained(rt, PRIOR);
      await rt.sync();
      const live = rt.pool.stats().live;
      const error = await failure(
        prior.call(request({ numInferenceSteps: 4, callback: ({ step }) => (step === 1 ? rt.device.destroy() : undefined) })),
      );
      expect(error).toBeInstanceOf(DeviceLostError);
      expect(error.message).toMatch(/^prior step [34]\/4: [\w.]+: GPU device lost \(destroyed\): .+; recreate the pipeline$/);
      expect(rt.pool.stats().live).toBe(live);
      const again = await failure(prior.call(request()));
      expect(again).toBeInstanceOf(DeviceLostError);
      expect(again.message).toMatch(/^prior: this pipeline's GPU runtime failed earlier; recreate the runtime and the pipeline: GPU device lost \(destroyed\): /);
      prior.dispose();
    }));

  it('device loss at the decoder\'s last step: DeviceLostError from the step or the VQGAN decode that follows', () =>
    brokenRuntimeTest(async (rt) => {
      const decoder = await WuerstchenDecoderPipeline.fromPretrained(rt, DECODER);
      await rt.sync();
      const live = rt.pool.stats().live;
      const error = await failure(
        decoder.call({
          prompt: 'a cat',
          imageEmbeddings: { shape: [1, 16, 3, 3], data: new Float32Array(144) },
          numInferenceSteps: 2,
          generator: new TorchGenerator(7),
          callback: ({ step }) => (step === 1 ? rt.device.destroy() : undefined),
        }),
      );
      expect(error).toBeInstanceOf(DeviceLostError);
      expect(error.message).toMatch(/^VQGAN decode( readback)?: ([\w.]+: )?GPU device lost/);
      expect(rt.pool.stats().live).toBe(live);
      decoder.dispose();
    }));

  it('an out-of-memory report from the device mid-generation: GpuOutOfMemoryError with stage, step and op', () =>
    brokenRuntimeTest(async (rt) => {
      const prior = await WuerstchenPriorPipeline.fromPretrained(rt, PRIOR);
      await rt.sync();
      const live = rt.pool.stats().live;
      // What Dawn raises when an allocation fails: an uncaptured GPUOutOfMemoryError event.
      const outOfMemory = () =>
        rt.device.dispatchEvent(new GPUUncapturedErrorEvent('uncapturederror', { error: new GPUOutOfMemoryError('Out of memory creating a 3 GiB buffer') }));
      const error = await failure(prior.call(request({ callback: ({ step }) => void (step === 0 && outOfMemory()) })));
      expect(error).toBeInstanceOf(GpuOutOfMemoryError);
      expect(error.message).toMatch(/^prior step 2\/3: [\w.]+: WebGPU error: Out of memory creating a 3 GiB buffer$/);
      expect(rt.pool.stats().live).toBe(live);
      const again = await failure(prior.call(request()));
      expect(again).toEqual(
        new GpuOutOfMemoryError(
          "prior: this pipeline's GPU runtime failed earlier; recreate the runtime and the pipeline: WebGPU error: Out of memory creating a 3 GiB buffer",
        ),
      );
      prior.dispose();
    }));

  it('a tensor no binding can hold is a GpuOutOfMemoryError before anything is allocated', async () => {
    const rt = await getRuntime();
    const created = rt.pool.stats().created;
    const limit = rt.limits.maxStorageBufferBindingSize;
    const n = limit / 4 + 1;
    expect(() => rt.empty([n], 'f32', 'decoder.activations')).toThrow(
      new GpuOutOfMemoryError(
        `decoder.activations: tensor [${n}] f32 needs ${n * 4} bytes, more than this device's maxStorageBufferBindingSize (${limit}); it must be split`,
      ),
    );
    expect(rt.pool.stats().created).toBe(created);
  });
});

describe('cancellation and concurrent calls on the shared runtime', () => {
  let rt: Runtime;
  let prior: WuerstchenPriorPipeline;
  let decoder: WuerstchenDecoderPipeline;

  beforeAll(async () => {
    rt = await getRuntime();
    prior = await WuerstchenPriorPipeline.fromPretrained(rt, PRIOR);
    decoder = await WuerstchenDecoderPipeline.fromPretrained(rt, DECODER);
  });

  afterAll(() => {
    prior?.dispose();
    decoder?.dispose();
  });

  it('an AbortSignal fired during a step stops the generation before the next step and frees its buffers', async () => {
    await rt.sync();
    const live = rt.pool.stats().live;
    const controller = new AbortController();
    const steps: number[] = [];
    const error = await failure(
      prior.call(
        request({
          numInferenceSteps: 5,
          signal: controller.signal,
          callback: ({ step }) => {
            steps.push(step);
            if (step === 1) controller.abort();
          },
        }),
      ),
    );
    expect(error.name).toBe('AbortError');
    expect(steps).toEqual([0, 1]);
    expect(rt.pool.stats().live).toBe(live);

    const decoderController = new AbortController();
    const decoderError = await failure(
      decoder.call({
        prompt: 'a cat',
        imageEmbeddings: { shape: [1, 16, 3, 3], data: new Float32Array(144) },
        numInferenceSteps: 3,
        signal: decoderController.signal,
        callback: () => decoderController.abort(new Error('closed by the user')),
      }),
    );
    expect(decoderError).toEqual(new Error('closed by the user'));
    expect(rt.pool.stats().live).toBe(live);

    // The pipeline stays usable.
    const embeddings = await prior.call(request());
    expect(embeddings.shape).toEqual([1, 16, 3, 3]);
    embeddings.dispose();
  });

  it('an already aborted signal is refused before any allocation', async () => {
    await rt.sync();
    const before = rt.pool.stats();
    const error = await failure(prior.call(request({ signal: AbortSignal.abort() })));
    expect(error.name).toBe('AbortError');
    expect(rt.pool.stats().created).toBe(before.created);
    expect(rt.pool.stats().live).toBe(before.live);
  });

  it('two concurrent calls on one pipeline run one after the other, with the results of sequential calls', async () => {
    const order: string[] = [];
    const run = (tag: string, seed: number) =>
      prior.call(request({ generator: new TorchGenerator(seed), callback: ({ step }) => void order.push(`${tag}${step}`) }));
    const [a, b] = await Promise.all([run('a', 1), run('b', 2)]);
    expect(order).toEqual(['a0', 'a1', 'a2', 'b0', 'b1', 'b2']);
    const [soloA, soloB] = [await run('c', 1), await run('d', 2)];
    const [va, vb, vsa, vsb] = await rt.readMany([a, b, soloA, soloB]);
    expect(Array.from(va)).toEqual(Array.from(vsa));
    expect(Array.from(vb)).toEqual(Array.from(vsb));
    for (const t of [a, b, soloA, soloB]) t.dispose();
  });

  it('a decoder call made while a prior call runs on the same runtime waits; a failing call does not block the queue', async () => {
    const order: string[] = [];
    const priorRun = prior.call(request({ callback: ({ step }) => void order.push(`prior${step}`) }));
    const rejected = failure(prior.call(request({ width: -1 })));
    const decoderRun = decoder.call({
      prompt: 'a cat',
      imageEmbeddings: { shape: [1, 16, 3, 3], data: new Float32Array(144) },
      numInferenceSteps: 2,
      generator: new TorchGenerator(3),
      callback: ({ step }) => void order.push(`decoder${step}`),
    });
    const [embeddings, error, images] = await Promise.all([priorRun, rejected, decoderRun]);
    expect(order).toEqual(['prior0', 'prior1', 'prior2', 'decoder0', 'decoder1']);
    expect(error.message).toBe('width must be a positive integer, got -1');
    expect(images.shape).toEqual([1, 3, 128, 128]);
    embeddings.dispose();
  });
});

describe('output files are written atomically', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atomic-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('a reader during a write sees the old file or the whole new one; a failed write keeps the old one and leaves no temp file', async () => {
    const path = join(dir, 'image.png');
    const old = new Uint8Array(1 << 20).fill(0x11);
    const next = new Uint8Array(8 << 20).fill(0x22);
    await writeFile(path, old);
    const seen = new Set<string>();
    async function* chunks() {
      for (let i = 0; i < 8; i++) {
        const current = await readFile(path);
        seen.add(current.equals(Buffer.from(old)) ? 'old' : 'other');
        yield next.subarray(i << 20, (i + 1) << 20);
      }
    }
    await writeFileAtomic(path, chunks());
    expect(seen).toEqual(new Set(['old']));
    expect((await readFile(path)).equals(Buffer.from(next))).toBe(true);

    async function* failing() {
      yield old;
      throw new Error('disk full');
    }
    await expect(writeFileAtomic(path, failing())).rejects.toThrow('disk full');
    expect((await readFile(path)).equals(Buffer.from(next))).toBe(true);
    expect(await readdir(dir)).toEqual(['image.png']);
  });

  it('a process killed in the middle of a write leaves the old file whole', async () => {
    const path = join(dir, 'killed.png');
    await writeFile(path, 'old contents');
    const script = join(dir, 'slow_writer.mts');
    await writeFile(
      script,
      `import { writeFileAtomic } from ${JSON.stringify(pathToFileURL(join(REPO_ROOT, 'src/platform/file.ts')).href)};
async function* chunks() {
  yield new Uint8Array(1 << 20).fill(0x33);
  console.log('first chunk written');
  await new Promise((resolve) => setTimeout(resolve, 60_000));
  yield new Uint8Array(1);
}
await writeFileAtomic(${JSON.stringify(path)}, chunks());
`,
    );
    const child = spawn(process.execPath, ['--import', 'tsx', script], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (data: Buffer) => (data.toString().includes('first chunk written') ? resolve() : undefined));
      child.on('exit', (code) => reject(new Error(`writer exited early with ${code}`)));
    });
    child.removeAllListeners('exit');
    const exited = new Promise((resolve) => child.on('exit', resolve));
    child.kill('SIGKILL');
    await exited;
    expect(await readFile(path, 'utf8')).toBe('old contents');
  });

  it('a pipeline dump that cannot be written leaves the previous dump untouched', async () => {
    const rt = await getRuntime();
    const path = join(dir, 'run.safetensors');
    const good = new PipelineDump(rt);
    good.host('prior.step00.t', { shape: [1], data: new Float32Array([1]) });
    await good.write(path);
    const before = await readFile(path);
    const bad = new PipelineDump(rt);
    bad.host('__metadata__', { shape: [1], data: new Float32Array([2]) });
    await expect(bad.write(path)).rejects.toThrow('tensor "__metadata__": this name is reserved for the metadata');
    expect((await readFile(path)).equals(before)).toBe(true);
  });
});
