import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PaellaVQModel } from '../src/models/vqgan/modeling_paella_vq_model.js';
import { parsePaellaVQConfig } from '../src/models/vqgan/configuration_paella_vq_model.js';
import { parseWuerstchenDiffNeXtConfig } from '../src/models/stage_b/modeling_wuerstchen_diffnext.js';
import { parseWuerstchenPriorConfig } from '../src/models/stage_c/modeling_wuerstchen_prior.js';
import { checkActivationsFit, decoderActivations, priorActivations, vqganActivations } from '../src/pipeline/activation_limits.js';
import { PipelineInputError } from '../src/pipeline/validate.js';
import { Runtime } from '../src/runtime/device.js';
import { expectClose } from './helpers/compare.js';
import { readHostTensors } from './helpers/golden_io.js';

// An adapter with WebGPU's default limits (128 MiB per storage binding, 256 MiB per buffer) and no
// shader-f16, as some browsers and mobile GPUs offer: the real models' 1024×1024 generation fits,
// because every tensor over a binding is computed in pieces (the VQGAN's MLP in chunks of tokens,
// its last level in bands of rows, attention scores in windows of queries).
const FIXTURES = new URL('./fixtures/', import.meta.url).pathname;
const realConfig = async (name: string) => JSON.stringify((JSON.parse(await readFile(`${FIXTURES}manifests/${name}.json`, 'utf8')) as { config: unknown }).config);

let rt: Runtime;

beforeAll(async () => {
  rt = await Runtime.create({ defaultLimits: true, f16: false });
});

afterAll(() => rt?.destroy());

describe('an adapter with default limits and no shader-f16', () => {
  it('has the default binding and buffer limits and stores f16 as f32', () => {
    expect(rt.limits.maxStorageBufferBindingSize).toBe(128 * 2 ** 20);
    expect(rt.limits.maxBufferSize).toBe(256 * 2 ** 20);
    expect(rt.storageDType('f16')).toBe('f32');
  });

  it('accepts the real models at 1024×1024 (f32), refuses 2048×2048 naming the VQGAN level 1 map', async () => {
    const prior = parseWuerstchenPriorConfig(await realConfig('prior'), 'prior');
    const decoder = parseWuerstchenDiffNeXtConfig(await realConfig('decoder'), 'decoder');
    const vqgan = parsePaellaVQConfig(await realConfig('vqgan'), 'vqgan');
    // 1024² with guidance: Stage C latents 24×24 (batch 2), Stage B latents 256×256, VQGAN latents 256×256.
    const needs = (side: number) => [
      ...priorActivations(prior, 2, Math.ceil(side / 42.67), Math.ceil(side / 42.67), 77, 'f32'),
      ...decoderActivations(decoder, 1, side / 4, side / 4, 77, 'f32'),
      ...vqganActivations(vqgan, 1, side / 4, side / 4, 'f32'),
    ];
    expect(() => checkActivationsFit(rt, 'a 1024×1024 image', needs(1024))).not.toThrow();
    expect(() => checkActivationsFit(rt, 'a 2048×2048 image', needs(2048))).toThrow(PipelineInputError);
    expect(() => checkActivationsFit(rt, 'a 2048×2048 image', needs(2048))).toThrow('needs a VQGAN level 1 tensor of [1, 512, 512, 384] f32');
  });

  it('decodes the tiny VQGAN golden latents in bands of rows within the io tolerance', async () => {
    const golden = await readHostTensors(`${FIXTURES}io/vqgan.safetensors`);
    const model = await PaellaVQModel.fromPretrained(rt, `${FIXTURES}models/vqgan`);
    const { data, shape } = golden.get('encode.latents')!;
    const latents = rt.upload(data, shape);
    const sample = await model.decode(latents, { bandBytes: 2 * 2 ** 10 });
    expectClose(await rt.read(sample), golden.get('decode.force_not_quantize_true.sample')!.data, { atol: 1e-5, rtol: 1e-4 }, 'sample');
    for (const t of [latents, sample]) t.dispose();
    model.dispose();
  });
});
