/**
 * Mirrors diffusers v0.21.0 `WuerstchenCombinedPipeline`: the prior pipeline, then the decoder
 * pipeline with the same generator. Hub ids or local folders in the Hub layout. In low-memory mode
 * each stage is loaded when it runs and freed right after, so only one stage's weights are resident.
 */
import type { HubOptions } from '../io/hub.js';
import type { Runtime } from '../runtime/device.js';
import type { DType } from '../runtime/dtype.js';
import type { HostTensor } from './host_tensor.js';
import { resolvePipelineFolder } from './model_index.js';
import type { PipelineDump } from './pipeline_dump.js';
import { WuerstchenDecoderPipeline, type DecoderCallOptions } from './pipeline_wuerstchen.js';
import {
  defaultGenerator,
  validatePriorOptions,
  WuerstchenPriorPipeline,
  type PriorCallOptions,
  type StepCallback,
} from './pipeline_wuerstchen_prior.js';
import type { TorchGenerator } from './torch_generator.js';
import { finiteNumber, stepCount, timestepList } from './validate.js';

export interface WuerstchenPipelineOptions {
  dtype?: DType;
  lowMemory?: boolean;
  hub?: HubOptions;
}

export interface GenerateOptions {
  prompt: string | readonly string[];
  negativePrompt?: string | readonly string[];
  height?: number;
  width?: number;
  numImagesPerPrompt?: number;
  priorSteps?: number;
  priorTimesteps?: readonly number[];
  priorGuidanceScale?: number;
  decoderSteps?: number;
  decoderTimesteps?: readonly number[];
  decoderGuidanceScale?: number;
  generator?: TorchGenerator | TorchGenerator[];
  /** Explicit initial Stage C noise. */
  latents?: HostTensor;
  callback?: StepCallback;
  signal?: AbortSignal;
  dump?: PipelineDump;
}

export interface GenerateResult {
  /** [B, 3, H, W] in [0, 1]. */
  images: HostTensor;
  /** Stage C output, [B, 16, h, w]. */
  imageEmbeddings: HostTensor;
}

/**
 * Each stage's request with diffusers' combined-pipeline defaults, checked: a bad setting of either
 * stage fails here, before a low-memory run (or the CLI) loads anything.
 */
export function stageRequests(options: GenerateOptions): {
  prior: PriorCallOptions;
  decoder: Omit<DecoderCallOptions, 'imageEmbeddings'>;
} {
  const common = {
    generator: options.generator ?? defaultGenerator(),
    callback: options.callback,
    signal: options.signal,
    dump: options.dump,
    prompt: options.prompt,
    negativePrompt: options.negativePrompt,
  };
  const prior: PriorCallOptions = {
    ...common,
    height: options.height,
    width: options.width,
    numImagesPerPrompt: options.numImagesPerPrompt,
    numInferenceSteps: options.priorSteps ?? 60,
    timesteps: options.priorTimesteps,
    guidanceScale: options.priorGuidanceScale ?? 4.0,
    latents: options.latents,
  };
  validatePriorOptions(prior);
  const decoder = {
    ...common,
    numInferenceSteps: stepCount(options.decoderSteps ?? 12, 'decoderSteps'),
    timesteps: options.decoderTimesteps && timestepList(options.decoderTimesteps),
    guidanceScale: finiteNumber(options.decoderGuidanceScale ?? 0.0, 'decoderGuidanceScale'),
  };
  return { prior, decoder };
}

export class WuerstchenPipeline {
  private prior: WuerstchenPriorPipeline | null = null;
  private decoder: WuerstchenDecoderPipeline | null = null;
  private busy: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly rt: Runtime,
    readonly priorDir: string,
    readonly decoderDir: string,
    readonly dtype: DType,
    readonly lowMemory: boolean,
  ) {}

  static async fromPretrained(
    rt: Runtime,
    prior = 'warp-ai/wuerstchen-prior',
    decoder = 'warp-ai/wuerstchen',
    { dtype = 'f32', lowMemory = false, hub = {} }: WuerstchenPipelineOptions = {},
  ): Promise<WuerstchenPipeline> {
    const pipeline = new WuerstchenPipeline(
      rt,
      await resolvePipelineFolder(prior, hub),
      await resolvePipelineFolder(decoder, hub),
      dtype,
      lowMemory,
    );
    if (!lowMemory) {
      pipeline.prior = await WuerstchenPriorPipeline.fromPretrained(rt, pipeline.priorDir, { dtype });
      pipeline.decoder = await WuerstchenDecoderPipeline.fromPretrained(rt, pipeline.decoderDir, { dtype }).catch((err) => {
        pipeline.dispose();
        throw err;
      });
    }
    return pipeline;
  }

  private async priorStage(): Promise<WuerstchenPriorPipeline> {
    return (this.prior ??= await WuerstchenPriorPipeline.fromPretrained(this.rt, this.priorDir, { dtype: this.dtype }));
  }

  private async decoderStage(): Promise<WuerstchenDecoderPipeline> {
    return (this.decoder ??= await WuerstchenDecoderPipeline.fromPretrained(this.rt, this.decoderDir, { dtype: this.dtype }));
  }

  private release(stage: 'prior' | 'decoder'): void {
    if (!this.lowMemory) return;
    this[stage]?.dispose();
    this[stage] = null;
    this.rt.trim();
  }

  /**
   * Text → images, with diffusers' combined-pipeline defaults (prior 60 steps at guidance 4.0,
   * decoder 12 steps at 0.0, 1024×1024). Calls on one pipeline run one after another.
   */
  generate(options: GenerateOptions): Promise<GenerateResult> {
    const run = this.busy.then(() => this.run(options));
    this.busy = run.catch(() => undefined);
    return run;
  }

  private async run(options: GenerateOptions): Promise<GenerateResult> {
    const { prior: priorRequest, decoder: decoderRequest } = stageRequests(options);
    const prior = await this.priorStage();
    let embeddingsDevice;
    try {
      embeddingsDevice = await prior.call(priorRequest);
    } finally {
      this.release('prior');
    }
    const imageEmbeddings = { shape: [...embeddingsDevice.shape], data: await this.rt.read(embeddingsDevice) };
    embeddingsDevice.dispose();
    const decoder = await this.decoderStage();
    try {
      const images = await decoder.call({ ...decoderRequest, imageEmbeddings });
      return { images, imageEmbeddings };
    } finally {
      this.release('decoder');
    }
  }

  dispose(): void {
    this.prior?.dispose();
    this.decoder?.dispose();
    this.prior = this.decoder = null;
  }
}
