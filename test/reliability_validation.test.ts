import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { WeightError } from '../src/nn/weight_scope.js';
import { decoderActivations, priorActivations, textEncoderActivations, vqganActivations } from '../src/pipeline/activation_limits.js';
import { WuerstchenDecoderPipeline, type DecoderCallOptions } from '../src/pipeline/pipeline_wuerstchen.js';
import { WuerstchenPriorPipeline, type PriorCallOptions } from '../src/pipeline/pipeline_wuerstchen_prior.js';
import { TorchGenerator } from '../src/pipeline/torch_generator.js';
import { PipelineInputError } from '../src/pipeline/validate.js';
import type { Runtime } from '../src/runtime/device.js';
import { getRuntime } from './helpers/gpu.js';

// Bad requests are refused before the GPU is touched: each case checks the exact message and that
// the buffer pool neither created nor handed out a buffer.
const DIR = fileURLToPath(new URL('./fixtures/pipelines/', import.meta.url));
const PRIOR = `${DIR}wuerstchen-prior`;
const DECODER = `${DIR}wuerstchen`;

let rt: Runtime;
let prior: WuerstchenPriorPipeline;
let decoder: WuerstchenDecoderPipeline;
let tmp: string;

beforeAll(async () => {
  rt = await getRuntime();
  prior = await WuerstchenPriorPipeline.fromPretrained(rt, PRIOR);
  decoder = await WuerstchenDecoderPipeline.fromPretrained(rt, DECODER);
  tmp = await mkdtemp(join(tmpdir(), 'reliability-'));
});

afterAll(async () => {
  prior?.dispose();
  decoder?.dispose();
  await rm(tmp, { recursive: true, force: true });
});

/** Runs `attempt`, which must fail, and checks that the pool created and handed out nothing meanwhile. */
async function rejectedBeforeAllocation(attempt: () => Promise<unknown>): Promise<Error> {
  await rt.sync();
  const before = rt.pool.stats();
  const error = await attempt().then(
    () => new Error('no error'),
    (err: Error) => err,
  );
  const after = rt.pool.stats();
  expect({ created: after.created, live: after.live, reused: after.reused }).toEqual({ created: before.created, live: before.live, reused: before.reused });
  return error;
}

const priorCall = (options: Partial<PriorCallOptions>) => () =>
  prior.call({ prompt: 'a cat', height: 128, width: 128, numInferenceSteps: 2, generator: new TorchGenerator(1), ...options });

/** Stage C embeddings for a Stage B latent of `lh` × `lw` pixels: h such that int(h · 10.67) = lh. */
const embeddings = (h: number, w: number, batch = 1) => ({ shape: [batch, 16, h, w], data: new Float32Array(batch * 16 * h * w) });

const decoderCall = (options: Partial<DecoderCallOptions>) => () =>
  decoder.call({ prompt: 'a cat', imageEmbeddings: embeddings(3, 3), numInferenceSteps: 2, generator: new TorchGenerator(1), ...options });

describe('generation requests are checked before any GPU allocation', () => {
  it.each([
    [{ width: 0 }, 'width must be a positive integer, got 0'],
    [{ height: -128 }, 'height must be a positive integer, got -128'],
    [{ height: 127.5 }, 'height must be a positive integer, got 127.5'],
    [{ numInferenceSteps: 0 }, 'numInferenceSteps must be a positive integer, got 0'],
    [{ numInferenceSteps: 10_001 }, 'numInferenceSteps must be at most 10000, got 10001'],
    [{ guidanceScale: Number.NaN }, 'guidanceScale must be a finite number, got NaN'],
    [{ guidanceScale: Number.POSITIVE_INFINITY }, 'guidanceScale must be a finite number, got Infinity'],
    [{ numImagesPerPrompt: 0 }, 'numImagesPerPrompt must be a positive integer, got 0'],
    [{ prompt: ['a', 'b'], negativePrompt: ['c'] }, 'negativePrompt has batch size 1, but prompt has batch size 2; they must match'],
    [{ prompt: [] }, 'prompt is an empty list'],
    [{ prompt: 42 as unknown as string }, 'prompt must be a string or a list of strings'],
    [{ negativePrompt: [7] as unknown as string[] }, 'negativePrompt must be a string or a list of strings'],
    [{ timesteps: [0.5] }, 'timesteps needs at least two values, got 1'],
    [{ timesteps: [1, Number.NaN, 0] }, 'timesteps[1] must be in [0, 1], got NaN'],
  ] as [Partial<PriorCallOptions>, string][])('prior %j: %s', async (options, message) => {
    expect(await rejectedBeforeAllocation(priorCall(options))).toEqual(new PipelineInputError(message));
  });

  it.each([
    [{ guidanceScale: Number.NEGATIVE_INFINITY }, 'guidanceScale must be a finite number, got -Infinity'],
    [{ numInferenceSteps: 1.5 }, 'numInferenceSteps must be a positive integer, got 1.5'],
    [{ prompt: ['a', 'b'], negativePrompt: 'c' }, 'negativePrompt has batch size 1, but prompt has batch size 2; they must match'],
    [{ prompt: ['a', 'b'], imageEmbeddings: embeddings(3, 3, 3) }, 'imageEmbeddings has batch 3, not a multiple of the 2 prompts'],
    [{ imageEmbeddings: embeddings(3, 3).data as unknown as DecoderCallOptions['imageEmbeddings'] }, 'imageEmbeddings must be [B, 16, h, w] with positive sizes, got []'],
    [{ imageEmbeddings: { shape: [1, 8, 3, 3], data: new Float32Array(72) } }, 'imageEmbeddings must be [B, 16, h, w] with positive sizes, got [1, 8, 3, 3]'],
    [{ imageEmbeddings: { shape: [1, 16, 0, 3], data: new Float32Array(0) } }, 'imageEmbeddings must be [B, 16, h, w] with positive sizes, got [1, 16, 0, 3]'],
    [{ imageEmbeddings: { shape: [1, 16, 3, 3], data: new Float32Array(5) } }, 'imageEmbeddings has 5 values for shape [1, 16, 3, 3]'],
    [{ imageEmbeddings: embeddings(4, 3) }, 'Stage B latents of 42×32 (from embeddings of 4×3) are not multiples of 16; choose another image size'],
  ] as [Partial<DecoderCallOptions>, string][])('decoder %j: %s', async (options, message) => {
    expect(await rejectedBeforeAllocation(decoderCall(options))).toEqual(new PipelineInputError(message));
  });

  it('refuses an image whose prior activations exceed the device limits, naming the tensor and the limit', async () => {
    const side = 1 << 20;
    const h = Math.ceil(side / 42.67);
    const bytes = 2 * h * h * 256 * 4;
    const error = await rejectedBeforeAllocation(priorCall({ height: side, width: side, guidanceScale: 4 }));
    expect(error).toEqual(
      new PipelineInputError(
        `a ${side}×${side} image (batch 1) needs a prior ResBlock tensor of [2, ${h}, ${h}, 256] f32 (${bytes} bytes), ` +
          `more than this device's maxStorageBufferBindingSize of ${rt.limits.maxStorageBufferBindingSize} bytes; choose a smaller size or fewer images`,
      ),
    );
  });

  it('refuses embeddings whose VQGAN activations exceed the device limits (data never read)', async () => {
    // int(h · 10.67) must be a multiple of 16, and the latents large enough for any device: 4 GiB+.
    let h = 6000;
    while (Math.trunc(h * 10.67) % 16 !== 0) h++;
    const lh = Math.trunc(h * 10.67);
    const error = await rejectedBeforeAllocation(decoderCall({ imageEmbeddings: { shape: [1, 16, h, h], data: new Float32Array(0) } }));
    // The VQGAN's last level would run in bands; its output projection, as large as the image, cannot.
    expect(error).toEqual(
      new PipelineInputError(
        `a ${4 * lh}×${4 * lh} image (batch 1) needs a VQGAN output tensor of [1, ${2 * lh}, ${2 * lh}, 12] f32 (${2 * lh * 2 * lh * 12 * 4} bytes), ` +
          `more than this device's maxStorageBufferBindingSize of ${rt.limits.maxStorageBufferBindingSize} bytes; choose a smaller size or fewer images`,
      ),
    );
  });

  it('an unknown dtype is refused before anything is read or allocated', async () => {
    const error = await rejectedBeforeAllocation(() => WuerstchenPriorPipeline.fromPretrained(rt, PRIOR, { dtype: 'bf16' as 'f16' }));
    expect(error).toEqual(new PipelineInputError(`dtype must be 'f32' or 'f16', got "bf16"`));
    const decoderError = await rejectedBeforeAllocation(() => WuerstchenDecoderPipeline.fromPretrained(rt, DECODER, { dtype: 'f64' as 'f16' }));
    expect(decoderError).toEqual(new PipelineInputError(`dtype must be 'f32' or 'f16', got "f64"`));
  });
});

describe('a checkpoint whose config does not match its tensors is refused before any GPU allocation', () => {
  /** A copy of the tiny `pipeline` folder with one component's config.json edited. */
  async function editedCopy(pipeline: string, component: string, edit: (config: Record<string, unknown>) => void): Promise<string> {
    const dir = await mkdtemp(join(tmp, `${component}-`));
    await cp(pipeline, dir, { recursive: true, dereference: true });
    const path = join(dir, component, 'config.json');
    const config = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
    edit(config);
    await writeFile(path, JSON.stringify(config));
    return dir;
  }

  it('prior depth 3 for a 2-block checkpoint: the first missing key, with its shape', async () => {
    const dir = await editedCopy(PRIOR, 'prior', (c) => (c.depth = 3));
    const error = await rejectedBeforeAllocation(() => WuerstchenPriorPipeline.fromPretrained(rt, dir));
    expect(error).toEqual(new WeightError(`${dir}/prior/diffusion_pytorch_model.safetensors: missing tensor 'blocks.6.depthwise.weight' (expected shape [64, 1, 3, 3])`));
  });

  it('text encoder hidden_size 64 for a 32-wide checkpoint: the mis-shaped key and both shapes', async () => {
    const dir = await editedCopy(PRIOR, 'text_encoder', (c) => (c.hidden_size = 64));
    const error = await rejectedBeforeAllocation(() => WuerstchenPriorPipeline.fromPretrained(rt, dir));
    expect(error).toEqual(
      new WeightError(`${dir}/text_encoder/model.safetensors: tensor 'text_model.embeddings.token_embedding.weight' has shape [49408, 32], expected [49408, 64]`),
    );
  });

  it('decoder c_hidden and VQGAN bottleneck_blocks that disagree with their checkpoints', async () => {
    const decoderDir = await editedCopy(DECODER, 'decoder', (c) => (c.c_hidden = [16, 32, 32, 64]));
    expect(await rejectedBeforeAllocation(() => WuerstchenDecoderPipeline.fromPretrained(rt, decoderDir))).toEqual(
      new WeightError(`${decoderDir}/decoder/diffusion_pytorch_model.safetensors: tensor 'down_blocks.3.0.1.weight' has shape [32, 32, 2, 2], expected [64, 32, 2, 2]`),
    );
    const vqganDir = await editedCopy(DECODER, 'vqgan', (c) => (c.bottleneck_blocks = 1));
    expect(await rejectedBeforeAllocation(() => WuerstchenDecoderPipeline.fromPretrained(rt, vqganDir))).toEqual(
      new WeightError(`${vqganDir}/vqgan/diffusion_pytorch_model.safetensors: missing tensor 'up_blocks.2.weight' (expected shape [32, 16, 4, 4])`),
    );
  });
});

describe('the activation estimates are the largest buffers a generation really allocates', () => {
  /** The largest byte size the pool is asked for while `run` runs. */
  async function largestRequest(run: () => Promise<unknown>): Promise<number> {
    const acquire = rt.pool.acquire.bind(rt.pool);
    let largest = 0;
    const spy = vi.spyOn(rt.pool, 'acquire').mockImplementation((bytes: number, label: string) => {
      largest = Math.max(largest, bytes);
      return acquire(bytes, label);
    });
    try {
      await run();
    } finally {
      spy.mockRestore();
    }
    return largest;
  }

  const largestNeed = (needs: { shape: number[] }[]) => Math.max(...needs.map((n) => n.shape.reduce((a, b) => a * b, 4)));

  it.each([
    [128, 256, 4, 1],
    [128, 128, 4, 2],
    [256, 256, 1, 1],
  ])('%i×%i, guidance %i, %i per prompt: prior and decoder (with its VQGAN) match exactly', async (height, width, guidance, perPrompt) => {
    let embeddingsShape: number[] = [];
    const priorLargest = await largestRequest(async () => {
      const out = await prior.call({ prompt: 'a cat', height, width, numInferenceSteps: 1, guidanceScale: guidance, numImagesPerPrompt: perPrompt, generator: new TorchGenerator(1) });
      embeddingsShape = [...out.shape];
      out.dispose();
    });
    const [h, w] = prior.latentSize(height, width);
    const batch = perPrompt * (guidance > 1 ? 2 : 1);
    expect(priorLargest).toBe(
      largestNeed([...priorActivations(prior.prior.config, batch, h, w, 77, 'f32'), ...textEncoderActivations(prior.textEncoder.config, { prompts: 1, tokens: 77 }, 'f32')]),
    );
    const decoderLargest = await largestRequest(() =>
      decoder.call({ prompt: 'a cat', imageEmbeddings: embeddings(embeddingsShape[2], embeddingsShape[3], perPrompt), numInferenceSteps: 1, guidanceScale: guidance, generator: new TorchGenerator(1) }),
    );
    const [lh, lw] = decoder.latentSize(h, w);
    expect(decoderLargest).toBe(
      largestNeed([
        ...decoderActivations(decoder.decoder.config, batch, lh, lw, 77, 'f32'),
        ...vqganActivations(decoder.vqgan.config, perPrompt, lh, lw, 'f32'),
      ]),
    );
  });
});

describe('the CLI shows the library messages', () => {
  async function generate(...args: string[]): Promise<{ code: number; stderr: string }> {
    const errors: string[] = [];
    const error = vi.spyOn(console, 'error').mockImplementation((line: string) => errors.push(line));
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const code = await main(['generate', 'a cat', '-o', join(tmp, 'cli.png'), '--prior', PRIOR, '--decoder', DECODER, '--low-memory', ...args]);
      return { code, stderr: errors.join('\n') };
    } finally {
      error.mockRestore();
      log.mockRestore();
    }
  }

  it.each([
    [['--width', '0'], 'width must be a positive integer, got 0'],
    [['--prior-steps', '0'], 'numInferenceSteps must be a positive integer, got 0'],
    [['--prior-guidance', 'Infinity'], 'guidanceScale must be a finite number, got Infinity'],
    [['--images', '-1'], 'numImagesPerPrompt must be a positive integer, got -1'],
    [['--width', '1048576', '--height', '1048576'], 'a 1048576×1048576 image (batch 1) needs a prior ResBlock tensor of [2, 24575, 24575, 256] f32'],
  ])('generate %j', async (args, message) => {
    const { code, stderr } = await generate(...args);
    expect(code).toBe(1);
    expect(stderr).toContain(`wuerstchen generate: ${message}`);
  });
});
