import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openSafetensors, type TensorReader } from '../src/io/safetensors.js';
import { PipelineDump } from '../src/pipeline/pipeline_dump.js';
import { toRGBA } from '../src/pipeline/image.js';
import type { WuerstchenDecoderPipeline } from '../src/pipeline/pipeline_wuerstchen.js';
import type { WuerstchenPriorPipeline } from '../src/pipeline/pipeline_wuerstchen_prior.js';
import { TorchGenerator } from '../src/pipeline/torch_generator.js';
import type { Runtime } from '../src/runtime/device.js';
import { expectClose, type Tolerance } from './helpers/compare.js';
import { getRuntime } from './helpers/gpu.js';
import { loadTinyPipelines, TINY_PIPELINES_DIR } from './helpers/tiny_pipelines.js';

// ../shared/golden/README.md §2, pipelines/e2e.safetensors rows.
function tolerance(name: string): Tolerance {
  if (name.endsWith('image') || name.includes('vqgan.decode')) return { atol: 1e-3, rtol: 1e-3 };
  return { atol: 1e-4, rtol: 1e-3 };
}

/** Every golden tensor with `prefix` (aliases resolved) against the dump; initial noise bit-exact. */
async function compareDump(golden: TensorReader, dump: PipelineDump, prefix: string, rename = (n: string) => n): Promise<number> {
  const aliases = JSON.parse(golden.metadata.aliases ?? '{}') as Record<string, string>;
  const names = [...golden.tensors.keys(), ...Object.keys(aliases)].filter((n) => n.startsWith(prefix));
  for (const name of names) {
    const stored = aliases[name] ?? name;
    const info = golden.tensors.get(stored)!;
    const ours = dump.tensors.get(rename(name));
    expect(ours, `dump has ${rename(name)}`).toBeDefined();
    expect(ours!.shape, `${name} shape`).toEqual(info.shape);
    const expected = info.dtype === 'I64' ? Float32Array.from(await golden.readI64AsNumbers(stored)) : await golden.readF32(stored);
    if (info.dtype === 'I64' || name.endsWith('initial_noise') || name.endsWith('.noise')) {
      expect(Array.from(ours!.data), `${name} (exact)`).toEqual(Array.from(expected));
    } else {
      expectClose(ours!.data, expected, tolerance(name), name);
    }
  }
  return names.length;
}

describe('tiny pipelines end to end against diffusers (golden e2e run)', () => {
  let rt: Runtime;
  let golden: TensorReader;
  let settings: Record<string, string | number>;
  let prior: WuerstchenPriorPipeline;
  let decoder: WuerstchenDecoderPipeline;

  beforeAll(async () => {
    rt = await getRuntime();
    golden = await openSafetensors(`${TINY_PIPELINES_DIR}e2e.safetensors`);
    settings = JSON.parse(golden.metadata.settings);
    ({ prior, decoder } = await loadTinyPipelines(rt));
  });

  afterAll(async () => {
    prior?.dispose();
    decoder?.dispose();
    await golden?.close();
  });

  it('run A: prior with CFG then decoder, one generator: noise bit-exact, every step and the image within tolerance', async () => {
    const dump = new PipelineDump(rt);
    const generator = new TorchGenerator(Number(settings.seed));
    const embeddings = await prior.call({
      prompt: String(settings.prompt),
      negativePrompt: String(settings.negative_prompt),
      height: Number(settings.height),
      width: Number(settings.width),
      numInferenceSteps: Number(settings.prior_steps),
      guidanceScale: Number(settings.prior_guidance),
      numImagesPerPrompt: Number(settings.num_images_per_prompt),
      generator,
      dump,
    });
    const images = await decoder.call({
      imageEmbeddings: embeddings,
      prompt: String(settings.prompt),
      negativePrompt: String(settings.negative_prompt),
      numInferenceSteps: Number(settings.decoder_steps),
      guidanceScale: Number(settings.decoder_guidance),
      generator,
      dump,
    });
    embeddings.dispose();
    expect(images.shape).toEqual([2, 3, 128, 256]);
    const compared = (await compareDump(golden, dump, 'prior.')) + (await compareDump(golden, dump, 'decoder.')) +
      (await compareDump(golden, dump, 'vqgan.')) + (await compareDump(golden, dump, 'image'));
    expect(compared).toBeGreaterThan(60);
    expect(toRGBA(images)[0].data.length).toBe(128 * 256 * 4);
  });

  it('run B: decoder alone with CFG (guidance 2.5) on run A embeddings', async () => {
    const dump = new PipelineDump(rt);
    const images = await decoder.call({
      imageEmbeddings: { shape: golden.tensors.get('prior.image_embeddings')!.shape, data: await golden.readF32('prior.image_embeddings') },
      prompt: String(settings.prompt),
      negativePrompt: String(settings.negative_prompt),
      numInferenceSteps: Number(settings.cfg_decoder_steps),
      guidanceScale: Number(settings.cfg_decoder_guidance),
      generator: new TorchGenerator(Number(settings.cfg_seed)),
      dump,
    });
    expect(images.shape).toEqual([2, 3, 128, 256]);
    const compared = await compareDump(golden, dump, 'run_cfg.', (n) => n.slice('run_cfg.'.length));
    expect(compared).toBeGreaterThan(20);
  });
});
