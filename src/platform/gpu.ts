/**
 * The one place that knows how each JavaScript runtime exposes WebGPU.
 * Node: the `webgpu` npm package (Dawn) with toggles; Deno and browsers: `navigator.gpu`.
 */

export class NoAdapterError extends Error {
  override name = 'NoAdapterError';
}

export class DeviceLostError extends Error {
  override name = 'DeviceLostError';
}

export interface GpuOptions {
  /** Dawn toggles to enable on Node (ignored elsewhere). */
  enableToggles?: string[];
  /** Dawn toggles to disable on Node (ignored elsewhere). */
  disableToggles?: string[];
  powerPreference?: GPUPowerPreference;
  /** Request `shader-f16` when the adapter has it (default true). */
  f16?: boolean;
  /** Request `subgroups` when the adapter has it (default true). */
  subgroups?: boolean;
  /**
   * Request `timestamp-query` when the adapter has it (default false; bench/profile.ts times each
   * dispatch with it). On Node, Dawn's 100 µs quantisation of timestamps is turned off with it.
   */
  timestamps?: boolean;
  /**
   * Request WebGPU's default limits (128 MiB per storage binding, 256 MiB per buffer, …) instead of
   * the adapter's best: behaves as an adapter with small limits would.
   */
  defaultLimits?: boolean;
}

export interface GpuContext {
  /** Kept alive with the device: when Dawn's instance is garbage-collected its threads die under the device. */
  gpu: GPU;
  adapter: GPUAdapter;
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; device: string; description: string; backend: string };
  features: Set<string>;
  /** Resolves with a DeviceLostError when the device is lost (never rejects). */
  lost: Promise<DeviceLostError>;
  /** Dawn's Node binding spins a CPU core while a map or `onSubmittedWorkDone` is pending; Deno and browsers do not. */
  busyPollsWhileWaiting: boolean;
}

const isNode = typeof process !== 'undefined' && !!process.versions?.node && !('Deno' in globalThis);

const NO_ADAPTER_HELP =
  'no WebGPU adapter found. On a headless Linux machine install a software Vulkan driver ' +
  '(Mesa lavapipe >= 24; on Debian bookworm run `bash scripts/setup-software-gpu.sh`, which installs ' +
  'mesa-vulkan-drivers from bookworm-backports); in a browser enable WebGPU (Chrome: --enable-unsafe-webgpu).';

async function getGpu(options: GpuOptions): Promise<GPU> {
  if (isNode) {
    if (!process.env.XDG_RUNTIME_DIR) process.env.XDG_RUNTIME_DIR = '/tmp';
    const { create, globals } = (await import('webgpu')) as unknown as {
      create(flags: string[]): GPU;
      globals: Record<string, unknown>;
    };
    // Dawn's classes (GPUBufferUsage, GPUMapMode, ...) must be global for code written against the spec.
    for (const [name, value] of Object.entries(globals)) {
      if (!(name in globalThis)) (globalThis as Record<string, unknown>)[name] = value;
    }
    const flags: string[] = [];
    const disable = [...(options.disableToggles ?? []), ...(options.timestamps ? ['timestamp_quantization'] : [])];
    if (options.enableToggles?.length) flags.push(`enable-dawn-features=${options.enableToggles.join(',')}`);
    if (disable.length) flags.push(`disable-dawn-features=${disable.join(',')}`);
    return create(flags);
  }
  const gpu = (globalThis.navigator as Navigator | undefined)?.gpu;
  if (!gpu) throw new NoAdapterError(`navigator.gpu is missing: ${NO_ADAPTER_HELP}`);
  return gpu;
}

/** Limits we ask for at the adapter's maximum: big checkpoints and activations need them. */
const MAX_LIMITS: (keyof GPUSupportedLimits)[] = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
  'maxBindGroups',
];

export async function requestGpu(options: GpuOptions = {}): Promise<GpuContext> {
  const gpu = await getGpu(options);
  const adapter = await gpu.requestAdapter({ powerPreference: options.powerPreference ?? 'high-performance' });
  if (!adapter) throw new NoAdapterError(NO_ADAPTER_HELP);

  const wanted: GPUFeatureName[] = [];
  if (options.f16 !== false && adapter.features.has('shader-f16')) wanted.push('shader-f16');
  if (options.subgroups !== false && adapter.features.has('subgroups')) wanted.push('subgroups' as GPUFeatureName);
  if (options.timestamps && adapter.features.has('timestamp-query')) wanted.push('timestamp-query');

  const requiredLimits: Record<string, number> = {};
  for (const name of options.defaultLimits ? [] : MAX_LIMITS) {
    const value = adapter.limits[name];
    if (typeof value === 'number') requiredLimits[name] = value;
  }
  const device = await adapter.requestDevice({ requiredFeatures: wanted, requiredLimits });

  const info = adapter.info ?? ({} as GPUAdapterInfo);
  const lost = device.lost.then(
    (e) => new DeviceLostError(`GPU device lost (${e.reason}): ${e.message || 'no details'}; recreate the pipeline`),
  );
  return {
    gpu,
    adapter,
    device,
    adapterInfo: {
      vendor: info.vendor ?? '',
      architecture: info.architecture ?? '',
      device: info.device ?? '',
      description: info.description ?? '',
      backend: isNode ? 'dawn (node)' : 'Deno' in globalThis ? 'deno' : 'browser',
    },
    features: new Set([...device.features] as string[]),
    lost,
    busyPollsWhileWaiting: isNode,
  };
}
