/**
 * The runtime: one GPUDevice with its buffer pool, command recorder, uniform arena and kernel
 * registry. Ops record dispatches through `dispatch`; nothing waits on the GPU until `read`/`sync`.
 */
import { requestGpu, DeviceLostError, type GpuContext, type GpuOptions } from '../platform/gpu.js';
import { BufferPool } from './buffer_pool.js';
import { bytesPerElement, f16BitsToF32Array, f32ArrayToF16Bits, type DType } from './dtype.js';
import { KernelRegistry, type KernelSpec } from './kernels.js';
import { Recorder } from './recorder.js';
import { numel, Tensor, type TensorOwner } from './tensor.js';

export class GpuError extends Error {
  override name = 'GpuError';
}

export class GpuOutOfMemoryError extends GpuError {
  override name = 'GpuOutOfMemoryError';
}

/**
 * A GPU failure (GpuError or DeviceLostError) again, of the same class, with `where` it surfaced (a
 * stage, a step, an op) in front of its message and the original as its cause. Other errors pass through.
 */
export function gpuFailureAt(err: unknown, where: string): unknown {
  if (!(err instanceof GpuError || err instanceof DeviceLostError)) return err;
  const Kind = err.constructor as new (message: string, options?: ErrorOptions) => Error;
  return new Kind(`${where}: ${err.message}`, { cause: err });
}

export interface RuntimeOptions extends GpuOptions {
  /** Dispatches per submit (default 64). */
  batchSize?: number;
}

export interface DispatchSpec {
  kernel: KernelSpec;
  /** Names the op in errors and GPU debug labels. */
  label: string;
  params?: Uint8Array;
  inputs: readonly Tensor[];
  outputs: readonly Tensor[];
  workgroups: readonly [number, number?, number?];
  work?: number;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class Runtime implements TensorOwner {
  readonly device: GPUDevice;
  readonly gpu: GpuContext;
  readonly limits: GPUSupportedLimits;
  readonly features: ReadonlySet<string>;
  readonly adapterInfo: GpuContext['adapterInfo'];
  readonly pool: BufferPool;
  readonly recorder: Recorder;
  readonly kernels: KernelRegistry;
  /** True when f16 tensors are stored as f16 (the adapter has `shader-f16`). */
  readonly hasF16: boolean;
  readonly hasSubgroups: boolean;

  private scopes: Set<Tensor>[] = [];
  /** Set while `precompile` collects the kernels a piece of work would dispatch. */
  private collecting: Map<string, KernelSpec> | null = null;
  private firstError: GpuError | DeviceLostError | null = null;
  /** Seconds of GPU time per unit of recorded work, learned from earlier waits. */
  private secondsPerWork = 0;
  private kernelsAtLastWait = 0;

  private constructor(ctx: GpuContext, options: RuntimeOptions) {
    this.gpu = ctx;
    this.device = ctx.device;
    this.limits = ctx.device.limits;
    this.features = ctx.features;
    this.adapterInfo = ctx.adapterInfo;
    this.hasF16 = ctx.features.has('shader-f16');
    this.hasSubgroups = ctx.features.has('subgroups');
    this.pool = new BufferPool(this.device, this.limits.maxBufferSize, (label, size, done) =>
      done.then((e) => {
        if (e) this.fail(new GpuOutOfMemoryError(`${label}: out of GPU memory allocating ${size} bytes (${e.message})`));
      }),
    );
    this.recorder = new Recorder(this.device, this.pool, options.batchSize ?? 64);
    this.kernels = new KernelRegistry(this.device, (key, done) =>
      done.then((e) => {
        if (e) this.fail(new GpuError(`shader ${key} failed to compile: ${e.message}`));
      }),
    );
    this.device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      const kind = ev.error.constructor?.name === 'GPUOutOfMemoryError' ? GpuOutOfMemoryError : GpuError;
      this.fail(new kind(`WebGPU error: ${ev.error.message}`));
    };
    void ctx.lost.then((e) => this.fail(e));
  }

  static async create(options: RuntimeOptions = {}): Promise<Runtime> {
    return new Runtime(await requestGpu(options), options);
  }

  private fail(error: GpuError | DeviceLostError): void {
    this.firstError ??= error;
  }

  /**
   * Throws the first asynchronous GPU error (validation, out-of-memory, device loss) seen so far,
   * named after `where` (the op about to run) when given. Such an error is final for this runtime.
   */
  checkErrors(where?: string): void {
    if (this.firstError) throw where === undefined ? this.firstError : gpuFailureAt(this.firstError, where);
  }

  /** The dtype tensors of `requested` type are stored in: f16 falls back to f32 without `shader-f16`. */
  storageDType(requested: DType): DType {
    return requested === 'f16' && !this.hasF16 ? 'f32' : requested;
  }

  // ---- tensors ---------------------------------------------------------------------------

  track(tensor: Tensor): void {
    this.scopes[this.scopes.length - 1]?.add(tensor);
  }

  releaseTensorBuffer(buffer: GPUBuffer): void {
    this.pool.release(buffer);
  }

  /**
   * Uninitialised tensor. Rejects sizes no single binding can hold instead of computing garbage: a
   * GpuOutOfMemoryError, as the allocation could never succeed on this device.
   */
  empty(shape: readonly number[], dtype: DType, label = 'tensor'): Tensor {
    this.checkErrors(label);
    const stored = this.storageDType(dtype);
    const bytes = Math.ceil((numel(shape) * bytesPerElement(stored)) / 4) * 4;
    const limit = this.limits.maxStorageBufferBindingSize;
    if (bytes > limit) {
      throw new GpuOutOfMemoryError(
        `${label}: tensor [${shape.join(', ')}] ${stored} needs ${bytes} bytes, more than this device's ` +
          `maxStorageBufferBindingSize (${limit}); it must be split`,
      );
    }
    return new Tensor(this, [...shape], stored, this.pool.acquire(bytes, label));
  }

  /** Uploads host data (f32 values) into a new tensor of `dtype`. */
  upload(data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32', label = 'upload'): Tensor {
    if (data.length !== numel(shape)) {
      throw new Error(`${label}: ${data.length} values do not fill shape [${shape.join(', ')}]`);
    }
    const t = this.empty(shape, dtype, label);
    const bytes =
      t.dtype === 'f16' ? f32ArrayToF16Bits(data) : data instanceof Float32Array ? data : Float32Array.from(data);
    this.writeBytes(t, 0, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    return t;
  }

  /** Uploads raw f16 bits (as read from a checkpoint) into a new tensor of `dtype`. */
  uploadF16Bits(bits: Uint16Array, shape: readonly number[], dtype: DType = 'f16', label = 'upload'): Tensor {
    if (this.storageDType(dtype) === 'f32') return this.upload(f16BitsToF32Array(bits), shape, 'f32', label);
    const t = this.empty(shape, 'f16', label);
    this.writeBytes(t, 0, new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength));
    return t;
  }

  /** Writes bytes at `byteOffset` into a tensor (used for chunked uploads); pads to 4 bytes. */
  writeBytes(t: Tensor, byteOffset: number, bytes: Uint8Array): void {
    let data = bytes;
    if (data.byteLength % 4) {
      data = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
      data.set(bytes);
    }
    // The write must not overtake recorded commands that still read the buffer's previous tensor.
    if (this.pool.reusedSinceSubmit(t.buffer)) this.recorder.flush();
    // Host arrays here never live in a SharedArrayBuffer.
    this.device.queue.writeBuffer(t.buffer, t.byteOffset + byteOffset, data as Uint8Array<ArrayBuffer>);
  }

  /** A new tensor with the same contents, recorded in order with the dispatches before it. */
  copy(t: Tensor, label = 'copy'): Tensor {
    const out = this.empty(t.shape, t.dtype, label);
    this.recorder.copy(t.buffer, t.byteOffset, out.buffer, out.byteOffset, Math.ceil(t.byteSize / 4) * 4);
    return out;
  }

  /**
   * Copies `byteCount` bytes from `src` at `srcByteOffset` into `dst` at `dstByteOffset`, recorded in
   * order with the dispatches around it; offsets and count must be multiples of 4.
   */
  copyBytes(src: Tensor, srcByteOffset: number, dst: Tensor, dstByteOffset: number, byteCount: number): void {
    src.assertAlive();
    dst.assertAlive();
    const fits = (t: Tensor, offset: number) => offset >= 0 && offset + byteCount <= t.byteSize;
    if ([srcByteOffset, dstByteOffset, byteCount].some((v) => v % 4 !== 0) || !fits(src, srcByteOffset) || !fits(dst, dstByteOffset)) {
      throw new Error(
        `copyBytes: ${byteCount} bytes from ${src} at ${srcByteOffset} to ${dst} at ${dstByteOffset} ` +
          `are out of range or not multiples of 4`,
      );
    }
    this.recorder.copy(src.buffer, src.byteOffset + srcByteOffset, dst.buffer, dst.byteOffset + dstByteOffset, byteCount);
  }

  /** Runs `fn`; tensors it creates are disposed at the end unless returned (or kept via `keep`). */
  async scope<T>(fn: () => Promise<T> | T): Promise<T> {
    const scope = new Set<Tensor>();
    this.scopes.push(scope);
    let result: T;
    try {
      result = await fn();
    } catch (err) {
      for (const t of scope) t.dispose();
      throw err;
    } finally {
      this.scopes.pop();
    }
    const kept = new Set<Tensor>();
    collectTensors(result, kept);
    for (const t of scope) {
      if (kept.has(t)) this.track(t);
      else t.dispose();
    }
    return result;
  }

  /** Takes a tensor out of every scope: it lives until disposed explicitly. */
  detach<T extends Tensor>(t: T): T {
    for (const scope of this.scopes) scope.delete(t);
    return t;
  }

  /** Moves a tensor out of the current scope into the enclosing one. */
  keep<T extends Tensor>(t: T): T {
    const top = this.scopes[this.scopes.length - 1];
    if (top?.delete(t)) this.scopes[this.scopes.length - 2]?.add(t);
    return t;
  }

  // ---- dispatch ----------------------------------------------------------------------------

  dispatch(spec: DispatchSpec): void {
    this.checkErrors(spec.label);
    if (this.collecting) {
      this.collecting.set(KernelRegistry.key(spec.kernel), spec.kernel);
      return;
    }
    const pipeline = this.kernels.get(spec.kernel);
    this.recorder.dispatch({
      pipeline,
      params: spec.params,
      buffers: [...spec.inputs, ...spec.outputs].map((t) => t.binding),
      workgroups: spec.workgroups,
      label: spec.label,
      work: spec.work ?? spec.outputs.reduce((s, t) => s + t.size, 0),
    });
  }

  /**
   * Compiles, all at once and off the main thread (`createComputePipelineAsync`), every kernel
   * variant `record` would dispatch that is not compiled yet: `record` runs with its dispatches
   * collected instead of recorded (it must not read back), and whatever tensors it creates are
   * freed. A model's first forward then waits for no compilation. Returns how many were compiled.
   */
  async precompile(record: () => unknown): Promise<number> {
    if (this.collecting) throw new Error('precompile: already collecting kernels');
    const collected = new Map<string, KernelSpec>();
    this.collecting = collected;
    try {
      const made = new Set<Tensor>();
      collectTensors(await this.scope(record), made);
      for (const t of made) t.dispose();
    } finally {
      this.collecting = null;
    }
    const missing = [...collected.values()].filter((spec) => !this.kernels.has(spec));
    await Promise.all(missing.map((spec) => this.kernels.prepare(spec)));
    this.checkErrors('precompile');
    return missing.length;
  }

  /** Destroys the pool's free buffers (after a pipeline stage is unloaded, say). */
  trim(): void {
    this.flush();
    this.recorder.forgetBindGroups();
    this.pool.trim();
  }

  /** Workgroup grid for `n` items of `perGroup` each; spills into y past the 65535 limit. */
  grid(n: number, perGroup: number): [number, number] {
    const groups = Math.max(1, Math.ceil(n / perGroup));
    const max = this.limits.maxComputeWorkgroupsPerDimension;
    if (groups <= max) return [groups, 1];
    const y = Math.ceil(groups / max);
    return [Math.ceil(groups / y), y];
  }

  // ---- synchronisation ---------------------------------------------------------------------

  flush(): void {
    this.recorder.flush();
  }

  /**
   * Waits for all submitted work without spinning a CPU core: Dawn's Node binding busy-polls while
   * a map is pending, which on small machines steals the cores the (software) GPU computes on.
   * So first sleep for most of the expected GPU time, then wait. When the work turns out to be done
   * already after the sleep, we overslept and the rate is halved; otherwise the measured time sets it.
   * Where waiting does not spin (Deno, browsers) it never sleeps: there the first waits also include
   * pipeline compilation, and a rate learned from them made later sleeps minutes too long.
   */
  private async waitFor(done: () => Promise<unknown>, work: number): Promise<void> {
    const start = performance.now();
    const expectedMs = this.gpu.busyPollsWhileWaiting ? work * this.secondsPerWork * 1000 : 0;
    const slept = expectedMs > 2;
    if (slept) await sleep(expectedMs * 0.85);
    const woke = performance.now();
    const lost = this.device.lost.then(() => {
      throw new DeviceLostError('GPU device lost while waiting for results');
    });
    await Promise.race([done(), lost]);
    const end = performance.now();
    // Tiny batches measure dispatch overhead, and batches that compiled pipelines (at first dispatch,
    // on some drivers) measure the compiler: neither says how fast the GPU computes.
    const compiled = this.kernels.size !== this.kernelsAtLastWait;
    this.kernelsAtLastWait = this.kernels.size;
    if (work < 1e5 || compiled) return;
    if (slept && end - woke < 1) this.secondsPerWork /= 2;
    else this.secondsPerWork = (end - start) / 1000 / work;
  }

  /** Reads raw bytes of tensors back in one submit. */
  private async readBytes(tensors: readonly Tensor[]): Promise<Uint8Array[]> {
    if (this.collecting) throw new Error('precompile: the recorded work must not read tensors back');
    this.checkErrors();
    const sizes = tensors.map((t) => Math.ceil(t.byteSize / 4) * 4);
    const total = sizes.reduce((a, b) => a + b, 0);
    const staging = this.device.createBuffer({ size: Math.max(4, total), usage: 0x01 | 0x08, label: 'readback' }); // MAP_READ | COPY_DST
    let offset = 0;
    tensors.forEach((t, i) => {
      t.assertAlive();
      if (sizes[i]) this.recorder.copy(t.buffer, t.byteOffset, staging, offset, sizes[i]);
      offset += sizes[i];
    });
    this.recorder.flush();
    try {
      await this.waitFor(() => staging.mapAsync(GPUMapMode.READ), this.recorder.takeWork());
      this.checkErrors();
      const all = new Uint8Array(staging.getMappedRange().slice(0));
      offset = 0;
      return tensors.map((t, i) => {
        const part = all.subarray(offset, offset + t.byteSize);
        offset += sizes[i];
        return part;
      });
    } finally {
      staging.destroy();
    }
  }

  /** Reads tensors back as f32 values (f16 tensors are widened exactly). */
  async readMany(tensors: readonly Tensor[]): Promise<Float32Array[]> {
    const parts = await this.readBytes(tensors);
    return parts.map((bytes, i) => {
      const copy = bytes.slice();
      return tensors[i].dtype === 'f16'
        ? f16BitsToF32Array(new Uint16Array(copy.buffer, 0, tensors[i].size))
        : new Float32Array(copy.buffer, 0, tensors[i].size);
    });
  }

  async read(t: Tensor): Promise<Float32Array> {
    return (await this.readMany([t]))[0];
  }

  /** Waits until everything recorded so far has run; surfaces asynchronous GPU errors. */
  async sync(): Promise<void> {
    this.checkErrors();
    this.recorder.flush();
    await this.waitFor(() => this.device.queue.onSubmittedWorkDone(), this.recorder.takeWork());
    this.checkErrors();
  }

  destroy(): void {
    this.device.destroy();
  }
}

function collectTensors(value: unknown, out: Set<Tensor>, depth = 0): void {
  if (depth > 4 || value === null || typeof value !== 'object') return;
  if (value instanceof Tensor) {
    out.add(value);
    if (value.base) out.add(value.base);
    return;
  }
  const items = Array.isArray(value) ? value : value instanceof Map ? [...value.values()] : Object.values(value);
  for (const item of items) collectTensors(item, out, depth + 1);
}
