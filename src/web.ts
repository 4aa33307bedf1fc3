/**
 * Entry of the browser bundle (`npm run build:web` → examples/web/dist/wuerstchen.js): what a page needs
 * to load both pipelines from base URLs and generate images. Nothing here imports node:* statically;
 * the file-system paths of platform/file.ts import it lazily and are never taken for http(s) URLs.
 */
export { NoAdapterError, DeviceLostError } from './platform/gpu.js';
export { GpuError, GpuOutOfMemoryError, Runtime } from './runtime/device.js';
export type { LoadProgress, LoadProgressCallback } from './nn/weight_scope.js';
export type { HostTensor } from './pipeline/host_tensor.js';
export { toRGBA } from './pipeline/image.js';
export { PipelineConfigError } from './pipeline/model_index.js';
export { WuerstchenDecoderPipeline } from './pipeline/pipeline_wuerstchen.js';
export {
  WuerstchenPriorPipeline,
  type PipelineLoadOptions,
  type StepCallback,
  type StepInfo,
} from './pipeline/pipeline_wuerstchen_prior.js';
export { TorchGenerator } from './pipeline/torch_generator.js';
export { PipelineInputError } from './pipeline/validate.js';
