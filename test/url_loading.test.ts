// Pipelines loaded from http:// base URLs (scripts/serve.mjs on loopback): the weights stream through
// range reads, each tensor is reported to onProgress, and the result still matches the golden run.
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveStatic } from '../scripts/serve.mjs';
import { openSafetensors, type TensorReader } from '../src/io/safetensors.js';
import type { LoadProgress } from '../src/nn/weight_scope.js';
import { PipelineConfigError } from '../src/pipeline/model_index.js';
import { WuerstchenDecoderPipeline } from '../src/pipeline/pipeline_wuerstchen.js';
import { WuerstchenPriorPipeline } from '../src/pipeline/pipeline_wuerstchen_prior.js';
import { TorchGenerator } from '../src/pipeline/torch_generator.js';
import { readTextFileIfExists } from '../src/platform/text_file.js';
import type { Runtime } from '../src/runtime/device.js';
import { expectClose } from './helpers/compare.js';
import { getRuntime } from './helpers/gpu.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = 'test/fixtures/pipelines';

describe('pipelines from http(s) base URLs', () => {
  let rt: Runtime;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    rt = await getRuntime();
    const served = await serveStatic(ROOT);
    server = served.server;
    base = `${served.url}/${FIXTURES}`;
  });

  afterAll(() => new Promise<void>((done) => server.close(() => done())));

  it('decoder pipeline: every tensor reported once per checkpoint, run B image within the e2e tolerance (atol 1e-3, rtol 1e-3)', async () => {
    const events: LoadProgress[] = [];
    const decoder = await WuerstchenDecoderPipeline.fromPretrained(rt, `${base}/wuerstchen`, { onProgress: (p) => events.push(p) });
    const golden = await openSafetensors(`${ROOT}${FIXTURES}/e2e.safetensors`);
    try {
      const components = ['text_encoder/model.safetensors', 'decoder/diffusion_pytorch_model.safetensors', 'vqgan/diffusion_pytorch_model.safetensors'];
      expect([...new Set(events.map((e) => e.file))]).toEqual(components.map((c) => `${base}/wuerstchen/${c}`));
      for (const component of components) {
        const local = await openSafetensors(`${ROOT}${FIXTURES}/wuerstchen/${component}`);
        const own = events.filter((e) => e.file.endsWith(component));
        const sizes = [...local.tensors.values()].map((info) => info.end - info.begin);
        const total = sizes.reduce((a, b) => a + b, 0);
        expect(own.map((e) => e.tensor).sort(), component).toEqual([...local.tensors.keys()].sort());
        expect(own.every((e, i) => e.totalBytes === total && (i === 0 || e.loadedBytes > own[i - 1].loadedBytes)), component).toBe(true);
        expect(own.at(-1)!.loadedBytes, component).toBe(total);
        await local.close();
      }

      const settings = JSON.parse(golden.metadata.settings) as Record<string, string | number>;
      const images = await decoder.call({
        imageEmbeddings: await hostTensor(golden, 'prior.image_embeddings'),
        prompt: String(settings.prompt),
        negativePrompt: String(settings.negative_prompt),
        numInferenceSteps: Number(settings.cfg_decoder_steps),
        guidanceScale: Number(settings.cfg_decoder_guidance),
        generator: new TorchGenerator(Number(settings.cfg_seed)),
      });
      const expected = await hostTensor(golden, resolveAlias(golden, 'run_cfg.image'));
      expect(images.shape).toEqual(expected.shape);
      expectClose(images.data, expected.data, { atol: 1e-3, rtol: 1e-3 }, 'run_cfg.image');
    } finally {
      decoder.dispose();
      await golden.close();
    }
  });

  it('a base URL without model_index.json fails with the URL and the HTTP status', async () => {
    const url = `${base}/no-such-pipeline/model_index.json`;
    const err = await WuerstchenPriorPipeline.fromPretrained(rt, `${base}/no-such-pipeline`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PipelineConfigError);
    expect((err as Error).message).toBe(`${url}: ${url}: 404 Not Found`);
  });

  it('readTextFileIfExists: undefined for a 404, the text otherwise', async () => {
    expect(await readTextFileIfExists(`${base}/wuerstchen/tokenizer/no-such-file.json`)).toBeUndefined();
    const index = JSON.parse((await readTextFileIfExists(`${base}/wuerstchen/model_index.json`))!);
    expect(index._class_name).toBe('WuerstchenDecoderPipeline');
  });
});

function resolveAlias(reader: TensorReader, name: string): string {
  const aliases = JSON.parse(reader.metadata.aliases ?? '{}') as Record<string, string>;
  return aliases[name] ?? name;
}

async function hostTensor(reader: TensorReader, name: string): Promise<{ shape: number[]; data: Float32Array }> {
  return { shape: [...reader.tensors.get(name)!.shape], data: await reader.readF32(name) };
}
