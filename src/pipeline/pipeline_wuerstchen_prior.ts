/**
 * Mirrors diffusers v0.21.0 src/diffusers/pipelines/wuerstchen/pipeline_wuerstchen_prior.py
 * (`WuerstchenPriorPipeline`): text → Stage C image embeddings.
 */
import { CLIPTextModel } from '../models/clip/modeling_clip.js';
import type { CLIPTokenizer } from '../models/clip/tokenization_clip.js';
import { WuerstchenPrior } from '../models/stage_c/modeling_wuerstchen_prior.js';
import type { LoadProgressCallback } from '../nn/weight_scope.js';
import { gatherBatch } from '../ops/batch.js';
import { cast } from '../ops/cast.js';
import { ddpmStep } from '../ops/ddpm_step.js';
import { add, lerp, mul } from '../ops/elementwise.js';
import { gpuFailureAt, type Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import type { Tensor } from '../runtime/tensor.js';
import { checkActivationsFit, priorActivations, textEncoderActivations } from './activation_limits.js';
import { checkCheckpoints } from './check_checkpoints.js';
import { encodePrompt } from './encode_prompt.js';
import { exclusive } from './exclusive.js';
import type { HostTensor } from './host_tensor.js';
import { indexNumber, loadScheduler, loadTokenizer, readModelIndex } from './model_index.js';
import { PipelineDump, stepName } from './pipeline_dump.js';
import { DDPMWuerstchenScheduler } from './scheduling_ddpm_wuerstchen.js';
import { randnTensor, TorchGenerator } from './torch_generator.js';
import { dtypeOption, finiteNumber, negativePromptList, PipelineInputError, positiveInteger, promptList, stepCount, timestepList } from './validate.js';

export interface StepInfo {
  stage: 'prior' | 'decoder';
  /** 0-based index of the step just taken, and the number of steps. */
  step: number;
  steps: number;
  timestep: number;
  /** The latents after this step (device, f32); valid during the callback only. */
  latents: Tensor;
}

export type StepCallback = (info: StepInfo) => void | Promise<void>;

export interface DenoiseOptions {
  /** `torch.Generator("cpu").manual_seed(s)` equivalent; a list gives one per image. Random when absent. */
  generator?: TorchGenerator | TorchGenerator[];
  /** Explicit initial noise instead of drawing it. */
  latents?: HostTensor;
  callback?: StepCallback;
  signal?: AbortSignal;
  dump?: PipelineDump;
}

export interface PriorCallOptions extends DenoiseOptions {
  prompt: string | readonly string[];
  negativePrompt?: string | readonly string[];
  height?: number;
  width?: number;
  numInferenceSteps?: number;
  timesteps?: readonly number[];
  guidanceScale?: number;
  numImagesPerPrompt?: number;
}

export interface PipelineLoadOptions {
  /** Device dtype of every component's weights (f16 falls back to f32 on adapters without shader-f16). */
  dtype?: DType;
  /** Called after each tensor of each component's checkpoint (`file` says which component). */
  onProgress?: LoadProgressCallback;
}

export interface PriorPipelineConfig {
  latentMean: number;
  latentStd: number;
  resolutionMultiple: number;
}

/** A generator seeded from the system's randomness, as diffusers uses torch's global RNG without one. */
export function defaultGenerator(): TorchGenerator {
  return new TorchGenerator(BigInt(Math.floor(Math.random() * 2 ** 53)));
}

/** Initial noise of `shape`: the given latents (checked) or `randn_tensor(shape, generator)`. */
export function initialNoise(rt: Runtime, shape: number[], options: DenoiseOptions, generator: TorchGenerator | TorchGenerator[]): Tensor {
  if (options.latents) {
    const { shape: given, data } = options.latents;
    if (given.length !== shape.length || given.some((d, i) => d !== shape[i])) {
      throw new PipelineInputError(`Unexpected latents shape, got [${given.join(', ')}], expected [${shape.join(', ')}]`);
    }
    return rt.upload(data, shape, 'f32', 'latents');
  }
  return rt.upload(randnTensor(shape, generator).data, shape, 'f32', 'latents');
}

/** One guided denoising loop shared by both stages: `model` maps (x, r) to the raw prediction. */
export async function denoise(
  rt: Runtime,
  stage: 'prior' | 'decoder',
  scheduler: DDPMWuerstchenScheduler,
  latents: Tensor,
  guidanceScale: number,
  modelDType: DType,
  model: (x: Tensor, r: Float32Array) => Promise<Tensor>,
  generator: TorchGenerator | TorchGenerator[],
  options: DenoiseOptions,
  /** Conditioning inputs of the model, dumped as `<stage>.stepNN.model_in.<name>`. */
  conditioning: Readonly<Record<string, Tensor>> = {},
): Promise<Tensor> {
  const guidance = guidanceScale > 1;
  const batch = latents.shape[0];
  const timesteps = scheduler.timesteps;
  const steps = timesteps.length - 1;
  const { dump } = options;
  let i = 0;
  const modelInput = (ratio: Float32Array) => ({
    x: cast(rt, guidance ? gatherBatch(rt, latents, [...Array(batch).keys(), ...Array(batch).keys()]) : latents, modelDType),
    r: guidance ? Float32Array.from([...ratio, ...ratio]) : ratio,
  });
  try {
    if (dump) await dump.device(`${stage}.initial_noise`, latents);
    // Every kernel of a step compiled at once, in parallel, instead of one by one as it is first used.
    if (steps > 0) {
      await rt.precompile(() => {
        const { x, r } = modelInput(new Float32Array(batch).fill(timesteps[0]));
        return model(x, r);
      });
    }
    for (; i < steps; i++) {
      options.signal?.throwIfAborted();
      // Each step starts a batch, so it records the same dispatches, buffers and uniform slots as
      // the step before it and reuses that step's bind groups (see Recorder).
      rt.flush();
      const ratio = new Float32Array(batch).fill(timesteps[i]);
      const name = `${stage}.${stepName(i)}`;
      const next = await rt.scope(async () => {
        const { x, r } = modelInput(ratio);
        const raw = await model(x, r);
        let predicted = raw;
        if (guidance) {
          const text = gatherBatch(rt, raw, [...Array(batch).keys()]);
          const uncond = gatherBatch(rt, raw, [...Array(batch).keys()].map((b) => b + batch));
          predicted = lerp(rt, uncond, text, guidanceScale);
        }
        const noise = rt.upload(randnTensor(latents.shape, generator).data, latents.shape, 'f32', 'step_noise');
        const prev = ddpmStep(rt, latents, predicted, noise, scheduler.stepCoefficients(ratio));
        if (dump) {
          dump.host(`${name}.t`, { shape: [batch], data: ratio });
          await dump.device(`${name}.model_in.x`, x);
          dump.host(`${name}.model_in.r`, { shape: [r.length], data: r });
          for (const [k, t] of Object.entries(conditioning)) await dump.device(`${name}.model_in.${k}`, t);
          await dump.device(`${name}.model_out`, raw);
          await dump.device(`${name}.guided_model_output`, predicted);
          await dump.device(`${name}.sample`, latents);
          await dump.device(`${name}.noise`, noise);
          await dump.device(`${name}.latents`, prev);
        }
        return prev;
      });
      latents.dispose();
      latents = next;
      await options.callback?.({ stage, step: i, steps, timestep: timesteps[i], latents });
    }
  } catch (err) {
    // Cancelled or failed between steps: the caller never sees these latents, so free them here.
    latents.dispose();
    throw gpuFailureAt(err, `${stage} step ${i + 1}/${steps}`);
  }
  return latents;
}

/** The prior's request checked, with diffusers' defaults, before anything touches the GPU. */
export function validatePriorOptions(options: PriorCallOptions) {
  const prompts = promptList(options.prompt);
  return {
    prompts,
    negative: negativePromptList(options.negativePrompt, prompts),
    height: positiveInteger(options.height ?? 1024, 'height'),
    width: positiveInteger(options.width ?? 1024, 'width'),
    perPrompt: positiveInteger(options.numImagesPerPrompt ?? 1, 'numImagesPerPrompt'),
    guidanceScale: finiteNumber(options.guidanceScale ?? 8.0, 'guidanceScale'),
    timesteps: options.timesteps && timestepList(options.timesteps),
    steps: stepCount(options.numInferenceSteps ?? 60, 'numInferenceSteps'),
  };
}

export class WuerstchenPriorPipeline {
  constructor(
    readonly rt: Runtime,
    readonly tokenizer: CLIPTokenizer,
    readonly textEncoder: CLIPTextModel,
    readonly prior: WuerstchenPrior,
    readonly scheduler: DDPMWuerstchenScheduler,
    readonly config: PriorPipelineConfig,
  ) {}

  /** A `warp-ai/wuerstchen-prior`-layout folder: a local path or an http(s) base URL (see `resolvePipelineFolder` for Hub ids). */
  static async fromPretrained(rt: Runtime, dir: string, { dtype = 'f32', onProgress }: PipelineLoadOptions = {}): Promise<WuerstchenPriorPipeline> {
    dtypeOption(dtype);
    const index = await readModelIndex(dir, 'WuerstchenPriorPipeline');
    const config = {
      latentMean: indexNumber(index, 'latent_mean', 42.0, dir),
      latentStd: indexNumber(index, 'latent_std', 1.0, dir),
      resolutionMultiple: indexNumber(index, 'resolution_multiple', 42.67, dir),
    };
    const tokenizer = await loadTokenizer(dir, index);
    const scheduler = await loadScheduler(dir);
    await checkCheckpoints(rt, dir, ['text_encoder', 'prior'], dtype);
    const textEncoder = await CLIPTextModel.fromPretrained(rt, `${dir}/text_encoder`, { dtype, onProgress });
    try {
      const prior = await WuerstchenPrior.fromPretrained(rt, `${dir}/prior`, { dtype, onProgress });
      return new WuerstchenPriorPipeline(rt, tokenizer, textEncoder, prior, scheduler, config);
    } catch (err) {
      textEncoder.dispose();
      throw err;
    }
  }

  /** The Stage C latent size of an image: `ceil(size / resolution_multiple)`. */
  latentSize(height: number, width: number): [number, number] {
    return [Math.ceil(height / this.config.resolutionMultiple), Math.ceil(width / this.config.resolutionMultiple)];
  }

  /**
   * Image embeddings [B·n, c_in, h, w] on the device (f32), already denormalised (`latents · mean − std`).
   * Calls on one runtime run one after another (see exclusive.ts).
   */
  call(options: PriorCallOptions): Promise<Tensor> {
    return exclusive(this.rt, () => this.generate(options));
  }

  private async generate(options: PriorCallOptions): Promise<Tensor> {
    const { rt } = this;
    rt.checkErrors("prior: this pipeline's GPU runtime failed earlier; recreate the runtime and the pipeline");
    options.signal?.throwIfAborted();
    const { prompts, negative, height, width, perPrompt, guidanceScale, timesteps, steps } = validatePriorOptions(options);
    const [h, w] = this.latentSize(height, width);
    const shape = [prompts.length * perPrompt, this.prior.config.c_in, h, w];
    const generator = options.generator ?? defaultGenerator();
    const guidance = guidanceScale > 1;
    const tokens = this.tokenizer.modelMaxLength;
    const dtype = this.textEncoder.dtype;
    checkActivationsFit(rt, `a ${height}×${width} image (batch ${shape[0]})`, [
      ...textEncoderActivations(this.textEncoder.config, { prompts: prompts.length, tokens }, dtype),
      ...priorActivations(this.prior.config, guidance ? 2 * shape[0] : shape[0], h, w, tokens, dtype),
    ]);

    const clip = await encodePrompt(rt, this, prompts, perPrompt, guidance, negative, options.dump, 'prior');
    try {
      this.scheduler.setTimesteps(timesteps ? { timesteps } : steps);
      const latents = initialNoise(rt, shape, options, generator);
      const final = await denoise(
        rt,
        'prior',
        this.scheduler,
        latents,
        guidanceScale,
        clip.dtype,
        (x, r) => this.prior.forward(x, r, clip),
        generator,
        options,
        { c: clip },
      );
      const embeddings = await rt.scope(() => {
        const scaled = mul(rt, final, rt.upload([this.config.latentMean], [1]));
        return add(rt, scaled, rt.upload([-this.config.latentStd], [1]));
      });
      final.dispose();
      if (options.dump) await options.dump.device('prior.image_embeddings', embeddings);
      return embeddings;
    } finally {
      clip.dispose();
    }
  }

  dispose(): void {
    this.textEncoder.dispose();
    this.prior.dispose();
  }
}
