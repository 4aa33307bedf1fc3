/**
 * Kernel registry: compiles a shader variant once and caches its pipeline by variant key
 * (file + flags + consts + dtypes). Shapes travel in uniforms, so they never create new pipelines.
 */
import { shaderSources } from './shaders.gen.js';
import { buildShader, variantKey, type ShaderVariant } from './wgsl.js';

export interface KernelSpec extends ShaderVariant {
  /** File name under shaders/, e.g. 'matmul.wgsl'. */
  shader: string;
  entryPoint?: string;
}

export class KernelRegistry {
  private readonly cache = new Map<string, GPUComputePipeline>();
  private readonly pendingAsync = new Map<string, Promise<GPUComputePipeline>>();

  constructor(
    private readonly device: GPUDevice,
    private readonly onCompileError: (key: string, done: Promise<GPUError | null>) => void = () => {},
    private readonly sources: Readonly<Record<string, string>> = shaderSources,
  ) {}

  static key(spec: KernelSpec): string {
    return `${variantKey(spec.shader, spec)}|${spec.entryPoint ?? 'main'}`;
  }

  source(spec: KernelSpec): string {
    return buildShader(spec.shader, this.sources, spec);
  }

  get(spec: KernelSpec): GPUComputePipeline {
    const key = KernelRegistry.key(spec);
    let pipeline = this.cache.get(key);
    if (!pipeline) {
      this.device.pushErrorScope('validation');
      const module = this.device.createShaderModule({ code: this.source(spec), label: key });
      pipeline = this.device.createComputePipeline({
        layout: 'auto',
        compute: { module, entryPoint: spec.entryPoint ?? 'main' },
        label: key,
      });
      this.onCompileError(key, this.device.popErrorScope());
      this.cache.set(key, pipeline);
    }
    return pipeline;
  }

  /** Compiles ahead of use (in parallel on drivers that can); `get` then hits the cache. */
  async prepare(spec: KernelSpec): Promise<void> {
    const key = KernelRegistry.key(spec);
    if (this.cache.has(key)) return;
    let pending = this.pendingAsync.get(key);
    if (!pending) {
      const module = this.device.createShaderModule({ code: this.source(spec), label: key });
      pending = this.device.createComputePipelineAsync({
        layout: 'auto',
        compute: { module, entryPoint: spec.entryPoint ?? 'main' },
        label: key,
      });
      this.pendingAsync.set(key, pending);
    }
    const pipeline = await pending;
    this.pendingAsync.delete(key);
    this.cache.set(key, pipeline);
  }

  has(spec: KernelSpec): boolean {
    return this.cache.has(KernelRegistry.key(spec));
  }

  get size(): number {
    return this.cache.size;
  }
}
