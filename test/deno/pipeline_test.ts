// The tiny text-to-image pipelines end to end on Deno's WebGPU against the diffusers golden run A
// (test/fixtures/pipelines/e2e.safetensors): initial noise bit-exact, image within the e2e tolerance.
import { openSafetensors } from '../../dist/io/safetensors.js';
import { PipelineDump } from '../../dist/pipeline/pipeline_dump.js';
import { WuerstchenDecoderPipeline } from '../../dist/pipeline/pipeline_wuerstchen.js';
import { WuerstchenPriorPipeline } from '../../dist/pipeline/pipeline_wuerstchen_prior.js';
import { TorchGenerator } from '../../dist/pipeline/torch_generator.js';
import { Runtime } from '../../dist/runtime/device.js';
import { assertClose, assertExact, assertShape, FIXTURES } from './golden.ts';

/** ../shared/golden/README.md §2, pipelines/e2e.safetensors rows. */
const IMAGE_TOL = { atol: 1e-3, rtol: 1e-3 };
const LATENT_TOL = { atol: 1e-4, rtol: 1e-3 };

Deno.test('pipelines: prior (CFG) then decoder, seed 42, against diffusers run A', async () => {
  const rt = await Runtime.create();
  const golden = await openSafetensors(`${FIXTURES}pipelines/e2e.safetensors`);
  const prior = await WuerstchenPriorPipeline.fromPretrained(rt, `${FIXTURES}pipelines/wuerstchen-prior`);
  const decoder = await WuerstchenDecoderPipeline.fromPretrained(rt, `${FIXTURES}pipelines/wuerstchen`);
  try {
    const settings = JSON.parse(golden.metadata.settings);
    const aliases = JSON.parse(golden.metadata.aliases ?? '{}');
    const expected = async (name: string) => {
      const stored = aliases[name] ?? name;
      return { shape: golden.tensors.get(stored).shape, data: await golden.readF32(stored) };
    };
    const dump = new PipelineDump(rt);
    const generator = new TorchGenerator(BigInt(settings.seed));
    const embeddings = await prior.call({
      prompt: settings.prompt,
      negativePrompt: settings.negative_prompt,
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
      prompt: settings.prompt,
      negativePrompt: settings.negative_prompt,
      numInferenceSteps: Number(settings.decoder_steps),
      guidanceScale: Number(settings.decoder_guidance),
      generator,
      dump,
    });
    embeddings.dispose();

    for (const name of ['prior.initial_noise', 'decoder.initial_noise']) {
      const want = await expected(name);
      assertShape(dump.tensors.get(name).shape, want.shape, name);
      assertExact(dump.tensors.get(name).data, want.data, name);
    }
    for (const name of ['prior.image_embeddings', 'decoder.latents_final']) {
      const want = await expected(name);
      assertClose(dump.tensors.get(name).data, want.data, LATENT_TOL, name);
    }
    const image = await expected('image');
    assertShape(images.shape, image.shape, 'image');
    assertClose(images.data, image.data, IMAGE_TOL, 'image');
  } finally {
    prior.dispose();
    decoder.dispose();
    await golden.close();
    rt.destroy();
  }
});
