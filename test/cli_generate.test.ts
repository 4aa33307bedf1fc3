import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { openSafetensors } from '../src/io/safetensors.js';
import { WuerstchenPipeline } from '../src/pipeline/pipeline_wuerstchen_combined.js';
import { TorchGenerator } from '../src/pipeline/torch_generator.js';
import { expectClose } from './helpers/compare.js';
import { getRuntime } from './helpers/gpu.js';

const DIR = fileURLToPath(new URL('./fixtures/pipelines/', import.meta.url));
const PRIOR = `${DIR}wuerstchen-prior`;
const DECODER = `${DIR}wuerstchen`;
// The golden run A (../shared/golden/pipelines/e2e.safetensors metadata `settings`).
const RUN_A = ['--negative-prompt', 'blurry, low quality', '--width', '256', '--height', '128', '--seed', '42',
  '--prior-steps', '6', '--prior-guidance', '4', '--decoder-steps', '3', '--decoder-guidance', '0', '--images', '2'];
const PROMPT = 'a photo of a cat wearing a tiny wizard hat, highly detailed';

function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0;
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    if (i % 4 === 3) continue; // alpha
    se += (a[i] - b[i]) ** 2;
    n++;
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / n));
}

const readPng = async (path: string) => PNG.sync.read(await readFile(path));

describe('wuerstchen generate on the tiny pipelines', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'generate-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes the golden run A images (PSNR ≥ 35 dB), PNG text metadata and a golden-named dump', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const code = await main(['generate', PROMPT, '-o', join(dir, 'cat.png'), ...RUN_A, '--prior', PRIOR, '--decoder', DECODER, '--dump', join(dir, 'run.safetensors')]);
    log.mockRestore();
    expect(code).toBe(0);
    for (const i of [0, 1]) {
      const ours = await readPng(join(dir, `cat_${i}.png`));
      const golden = await readPng(`${DIR}e2e_image_${i}.png`);
      expect([ours.width, ours.height]).toEqual([256, 128]);
      expect(psnr(ours.data, golden.data)).toBeGreaterThanOrEqual(35);
    }
    const bytes = await readFile(join(dir, 'cat_0.png'));
    expect(bytes.includes(Buffer.from(`tEXtprompt\0${PROMPT}`, 'latin1'))).toBe(true);
    expect(bytes.includes(Buffer.from('tEXtseed\u000042', 'latin1'))).toBe(true);

    const dump = await openSafetensors(join(dir, 'run.safetensors'));
    const golden = await openSafetensors(`${DIR}e2e.safetensors`);
    expect(await dump.readF32('prior.initial_noise')).toEqual(await golden.readF32('prior.initial_noise'));
    expectClose(await dump.readF32('prior.step05.latents'), await golden.readF32('prior.step05.latents'), { atol: 1e-4, rtol: 1e-3 }, 'prior.step05.latents');
    expectClose(await dump.readF32('image'), await golden.readF32('image'), { atol: 1e-3, rtol: 1e-3 }, 'image');
    await dump.close();
    await golden.close();
  });

  it('--image-embeddings runs the decoder alone (golden run B with CFG)', async () => {
    const golden = await openSafetensors(`${DIR}e2e.safetensors`);
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    const code = await main(['generate', PROMPT, '-o', join(dir, 'cfg.png'), '--negative-prompt', 'blurry, low quality', '--seed', '4242',
      '--decoder-steps', '3', '--decoder-guidance', '2.5', '--decoder', DECODER, '--image-embeddings', `${DIR}e2e.safetensors`, '--dump', join(dir, 'cfg.safetensors')]);
    log.mockRestore();
    expect(code).toBe(0);
    const dump = await openSafetensors(join(dir, 'cfg.safetensors'));
    expectClose(await dump.readF32('image'), await golden.readF32('run_cfg.image'), { atol: 1e-3, rtol: 1e-3 }, 'run_cfg.image');
    for (const i of [0, 1]) {
      expect(psnr((await readPng(join(dir, `cfg_${i}.png`))).data, (await readPng(`${DIR}e2e_cfg_image_${i}.png`)).data)).toBeGreaterThanOrEqual(35);
    }
    await dump.close();
    await golden.close();
  });

  it('rejects bad settings with one clear line before loading anything', async () => {
    const err = vi.spyOn(console, 'error').mockImplementation(() => {});
    expect(await main(['generate', PROMPT, '-o', join(dir, 'x.png'), '--prior-steps', '0', '--prior', PRIOR, '--decoder', DECODER])).toBe(1);
    expect(err).toHaveBeenLastCalledWith('wuerstchen generate: numInferenceSteps must be a positive integer, got 0');
    expect(await main(['generate', PROMPT, '-o', join(dir, 'x.png'), '--dtype', 'f64'])).toBe(1);
    expect(err).toHaveBeenLastCalledWith("wuerstchen generate: --dtype must be f32 or f16, got 'f64'");
    expect(await main(['generate', PROMPT, '-o', join(dir, 'x.png'), '--seed', 'abc'])).toBe(1);
    expect(err).toHaveBeenLastCalledWith("wuerstchen generate: --seed must be a number, got 'abc'");
    err.mockRestore();
  });
});

describe('WuerstchenPipeline (combined)', () => {
  it('equals the separate pipelines (golden run A) and, in low-memory mode, holds one stage at a time', async () => {
    const rt = await getRuntime();
    const golden = await openSafetensors(`${DIR}e2e.safetensors`);
    const request = {
      prompt: PROMPT,
      negativePrompt: 'blurry, low quality',
      height: 128,
      width: 256,
      numImagesPerPrompt: 2,
      priorSteps: 6,
      decoderSteps: 3,
    };
    const peaks: number[] = [];
    for (const lowMemory of [false, true]) {
      rt.trim();
      const before = rt.pool.stats().bytesAllocated;
      const pipeline = await WuerstchenPipeline.fromPretrained(rt, PRIOR, DECODER, { lowMemory });
      const { images } = await pipeline.generate({ ...request, generator: new TorchGenerator(42) });
      expectClose(images.data, await golden.readF32('image'), { atol: 1e-3, rtol: 1e-3 }, `image (lowMemory ${lowMemory})`);
      peaks.push(rt.pool.stats().peakBytesAllocated - before);
      pipeline.dispose();
    }
    await golden.close();
    expect(peaks.length).toBe(2);
  });
});
