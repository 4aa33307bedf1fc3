/**
 * Mirrors diffusers v0.21.0 src/diffusers/pipelines/wuerstchen/pipeline_wuerstchen.py
 * (`WuerstchenDecoderPipeline`): Stage C image embeddings (+ text) → Stage B latents → Stage A image.
 */
import { CLIPTextModel } from '../models/clip/modeling_clip.js';
import type { CLIPTokenizer } from '../models/clip/tokenization_clip.js';
import { WuerstchenDiffNeXt } from '../models/stage_b/modeling_wuerstchen_diffnext.js';
import { PaellaVQModel } from '../models/vqgan/modeling_paella_vq_model.js';
import { concatBatch, gatherBatch } from '../ops/batch.js';
import { cast } from '../ops/cast.js';
import { mul } from '../ops/elementwise.js';
import { gpuFailureAt, type Runtime } from '../runtime/device.js';
import type { Tensor } from '../runtime/tensor.js';
import { checkActivationsFit, decoderActivations, textEncoderActivations, vqganActivations } from './activation_limits.js';
import { checkCheckpoints } from './check_checkpoints.js';
import { encodePrompt, repeatInterleave } from './encode_prompt.js';
import { exclusive } from './exclusive.js';
import type { HostTensor } from './host_tensor.js';
import { indexNumber, loadScheduler, loadTokenizer, readModelIndex } from './model_index.js';
import { defaultGenerator, denoise, initialNoise, type DenoiseOptions, type PipelineLoadOptions } from './pipeline_wuerstchen_prior.js';
import type { DDPMWuerstchenScheduler } from './scheduling_ddpm_wuerstchen.js';
import { dtypeOption, finiteNumber, negativePromptList, PipelineInputError, positiveInteger, promptList, stepCount, timestepList } from './validate.js';

export interface DecoderCallOptions extends DenoiseOptions {
  /** Stage C output [B, c, h, w] (device f32 tensor, or host values). */
  imageEmbeddings: Tensor | HostTensor;
  prompt: string | readonly string[];
  negativePrompt?: string | readonly string[];
  numInferenceSteps?: number;
  timesteps?: readonly number[];
  guidanceScale?: number;
  numImagesPerPrompt?: number;
}

export class WuerstchenDecoderPipeline {
  constructor(
    readonly rt: Runtime,
    readonly tokenizer: CLIPTokenizer,
    readonly textEncoder: CLIPTextModel,
    readonly decoder: WuerstchenDiffNeXt,
    readonly scheduler: DDPMWuerstchenScheduler,
    readonly vqgan: PaellaVQModel,
    readonly config: { latentDimScale: number },
  ) {}

  /** A `warp-ai/wuerstchen`-layout folder: a local path or an http(s) base URL (see `resolvePipelineFolder` for Hub ids). */
  static async fromPretrained(rt: Runtime, dir: string, { dtype = 'f32', onProgress }: PipelineLoadOptions = {}): Promise<WuerstchenDecoderPipeline> {
    dtypeOption(dtype);
    const index = await readModelIndex(dir, 'WuerstchenDecoderPipeline');
    const config = { latentDimScale: indexNumber(index, 'latent_dim_scale', 10.67, dir) };
    const tokenizer = await loadTokenizer(dir, index);
    const scheduler = await loadScheduler(dir);
    await checkCheckpoints(rt, dir, ['text_encoder', 'decoder', 'vqgan'], dtype);
    const loaded: { dispose(): void }[] = [];
    try {
      const textEncoder = await CLIPTextModel.fromPretrained(rt, `${dir}/text_encoder`, { dtype, onProgress });
      loaded.push(textEncoder);
      const decoder = await WuerstchenDiffNeXt.fromPretrained(rt, `${dir}/decoder`, { dtype, onProgress });
      loaded.push(decoder);
      const vqgan = await PaellaVQModel.fromPretrained(rt, `${dir}/vqgan`, { dtype, onProgress });
      return new WuerstchenDecoderPipeline(rt, tokenizer, textEncoder, decoder, scheduler, vqgan, config);
    } catch (err) {
      for (const m of loaded) m.dispose();
      throw err;
    }
  }

  /** Stage B latent size for Stage C embeddings of h × w: `int(h · latent_dim_scale)`. */
  latentSize(h: number, w: number): [number, number] {
    return [Math.trunc(h * this.config.latentDimScale), Math.trunc(w * this.config.latentDimScale)];
  }

  /** Images [B·n, 3, H, W] in [0, 1] on the host. Calls on one runtime run one after another (see exclusive.ts). */
  call(options: DecoderCallOptions): Promise<HostTensor> {
    return exclusive(this.rt, () => this.generate(options));
  }

  private async generate(options: DecoderCallOptions): Promise<HostTensor> {
    const { rt } = this;
    rt.checkErrors("decoder: this pipeline's GPU runtime failed earlier; recreate the runtime and the pipeline");
    options.signal?.throwIfAborted();
    const prompts = promptList(options.prompt);
    const negative = negativePromptList(options.negativePrompt, prompts);
    const perPrompt = positiveInteger(options.numImagesPerPrompt ?? 1, 'numImagesPerPrompt');
    const guidanceScale = finiteNumber(options.guidanceScale ?? 0.0, 'guidanceScale');
    const timesteps = options.timesteps && timestepList(options.timesteps);
    const steps = stepCount(options.numInferenceSteps ?? 12, 'numInferenceSteps');
    const embShape = options.imageEmbeddings?.shape ?? [];
    const effnetChannels = this.decoder.config.effnet_embd;
    if (embShape.length !== 4 || embShape[1] !== effnetChannels || !embShape.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw new PipelineInputError(`imageEmbeddings must be [B, ${effnetChannels}, h, w] with positive sizes, got [${embShape.join(', ')}]`);
    }
    const embBatch = embShape[0];
    if (embBatch % prompts.length !== 0) {
      throw new PipelineInputError(`imageEmbeddings has batch ${embBatch}, not a multiple of the ${prompts.length} prompts`);
    }
    const [lh, lw] = this.latentSize(embShape[2], embShape[3]);
    const multiple = this.decoder.sizeMultiple;
    if (lh % multiple || lw % multiple) {
      throw new PipelineInputError(
        `Stage B latents of ${lh}×${lw} (from embeddings of ${embShape[2]}×${embShape[3]}) are not multiples of ${multiple}; choose another image size`,
      );
    }
    const batch = embBatch * perPrompt;
    const generator = options.generator ?? defaultGenerator();
    const guidance = guidanceScale > 1;
    const tokens = this.tokenizer.modelMaxLength;
    const modelDType = this.textEncoder.dtype;
    const imageScale = this.vqgan.config.upDownScaleFactor * 2 ** (this.vqgan.config.levels - 1);
    checkActivationsFit(rt, `a ${lh * imageScale}×${lw * imageScale} image (batch ${batch})`, [
      ...textEncoderActivations(this.textEncoder.config, { prompts: prompts.length, tokens }, modelDType),
      ...decoderActivations(this.decoder.config, guidance ? 2 * batch : batch, lh, lw, tokens, modelDType),
      ...vqganActivations(this.vqgan.config, batch, lh, lw, modelDType),
    ]);
    if (!('buffer' in options.imageEmbeddings) && options.imageEmbeddings.data.length !== embShape.reduce((a, b) => a * b, 1)) {
      throw new PipelineInputError(`imageEmbeddings has ${options.imageEmbeddings.data.length} values for shape [${embShape.join(', ')}]`);
    }

    // Each embedding keeps its own prompt: with one prompt this is diffusers' repeat of the prompt for every image.
    const clip = await encodePrompt(rt, this, prompts, batch / prompts.length, guidance, negative, options.dump, 'decoder');
    // The models run in the dtype they were loaded in, which the text embeddings carry.
    const dtype = clip.dtype;
    const effnet = await rt.scope(() => {
      const given =
        'buffer' in options.imageEmbeddings
          ? options.imageEmbeddings
          : rt.upload(options.imageEmbeddings.data, embShape, 'f32', 'image_embeddings');
      const repeated = cast(rt, gatherBatch(rt, given, repeatInterleave(embBatch, perPrompt)), dtype);
      if (!guidance) return repeated;
      const zeros = rt.upload(new Float32Array(repeated.size), repeated.shape, dtype, 'zeros');
      return concatBatch(rt, [repeated, zeros], 'effnet');
    });
    try {
      this.scheduler.setTimesteps(timesteps ? { timesteps } : steps);
      const latents = initialNoise(rt, [batch, this.decoder.config.c_in, lh, lw], options, generator);
      const final = await denoise(
        rt,
        'decoder',
        this.scheduler,
        latents,
        guidanceScale,
        dtype,
        (x, r) => this.decoder.forward(x, r, effnet, clip),
        generator,
        options,
        { effnet, clip },
      );
      const { dump } = options;
      if (dump) await dump.device('decoder.latents_final', final);
      const image = await rt
        .scope(async () => {
          const scaled = mul(rt, final, rt.upload([this.vqgan.scaleFactor], [1]));
          if (dump) await dump.device('vqgan.decode.in', scaled);
          return this.vqgan.decode(cast(rt, scaled, dtype));
        })
        .catch((err) => {
          throw gpuFailureAt(err, 'VQGAN decode');
        })
        .finally(() => final.dispose());
      const data = await rt
        .read(image)
        .catch((err) => {
          throw gpuFailureAt(err, 'VQGAN decode readback');
        })
        .finally(() => image.dispose());
      if (dump) dump.host('vqgan.decode.out', { shape: [...image.shape], data });
      const clamped = { shape: [...image.shape], data: data.map((v) => Math.min(1, Math.max(0, v))) };
      if (dump) dump.host('image', clamped);
      return clamped;
    } finally {
      clip.dispose();
      effnet.dispose();
    }
  }

  dispose(): void {
    this.textEncoder.dispose();
    this.decoder.dispose();
    this.vqgan.dispose();
  }
}
