/**
 * Size-bucketed pool of storage buffers. A released buffer may be handed out again at once: the
 * GPU runs the dispatches of a recording in order, so the next tensor's writes land after the
 * reads recorded before them. Host writes are the exception: `queue.writeBuffer` takes effect at
 * the next submit, before the commands still being recorded, so a buffer reused since the last
 * submit needs that submit first (`reusedSinceSubmit`); WebGPU's queue ordering covers the rest
 * without any CPU wait.
 */

const MIN_BUCKET = 256;
// STORAGE | COPY_SRC | COPY_DST as literals: on Node the GPUBufferUsage global exists only once Dawn is loaded.
const STORAGE_USAGE = 0x80 | 0x04 | 0x08;

/** Rounds up to a bucket: powers of two below 1 MiB, then quarter steps between powers of two. */
export function bucketSize(byteSize: number): number {
  const n = Math.max(MIN_BUCKET, byteSize);
  const pow = 2 ** Math.ceil(Math.log2(n));
  if (pow <= 1 << 20) return pow;
  const step = pow / 8;
  return Math.ceil(n / step) * step;
}

export interface PoolStats {
  created: number;
  reused: number;
  live: number;
  free: number;
  /** Released since the last submit (reusable by GPU writes, not yet by host writes). */
  pending: number;
  bytesAllocated: number;
  peakBytesAllocated: number;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Released since the last submit: reusable by GPU writes right away, by host writes after a submit. */
  private readonly recycled = new Map<number, GPUBuffer[]>();
  private readonly handedOutUnsubmitted = new Set<GPUBuffer>();
  private readonly sizes = new WeakMap<GPUBuffer, number>();
  /** Creation order, by which free buffers are handed out after each submit. */
  private readonly serials = new WeakMap<GPUBuffer, number>();
  private stats_ = { created: 0, reused: 0, live: 0, bytesAllocated: 0, peakBytesAllocated: 0 };

  constructor(
    private readonly device: GPUDevice,
    private readonly maxBufferSize: number,
    private readonly onAllocate: (label: string, size: number, done: Promise<GPUError | null>) => void = () => {},
  ) {}


  acquire(byteSize: number, label: string): GPUBuffer {
    const size = bucketSize(byteSize);
    if (size > this.maxBufferSize) {
      throw new RangeError(`${label}: buffer of ${byteSize} bytes exceeds the device's maxBufferSize (${this.maxBufferSize})`);
    }
    this.stats_.live++;
    const submitted = this.free.get(size)?.pop();
    const reused = submitted ?? this.recycled.get(size)?.pop();
    if (reused) {
      if (!submitted) this.handedOutUnsubmitted.add(reused);
      this.stats_.reused++;
      return reused;
    }
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE, label });
    this.onAllocate(label, size, this.device.popErrorScope());
    this.sizes.set(buffer, size);
    this.serials.set(buffer, this.stats_.created);
    this.stats_.created++;
    this.stats_.bytesAllocated += size;
    this.stats_.peakBytesAllocated = Math.max(this.stats_.peakBytesAllocated, this.stats_.bytesAllocated);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    this.stats_.live--;
    const size = this.sizes.get(buffer)!;
    let list = this.recycled.get(size);
    if (!list) this.recycled.set(size, (list = []));
    list.push(buffer);
  }

  /** Whether commands recorded but not yet submitted may still read this buffer's earlier contents. */
  reusedSinceSubmit(buffer: GPUBuffer): boolean {
    return this.handedOutUnsubmitted.has(buffer);
  }

  /**
   * Called after a queue submit: every released buffer is now safe for host writes too. Free
   * buffers are then handed out in a fixed order (newest first), whatever order they were released
   * in, so work that repeats after a submit (a denoising step) gets the same buffers each time.
   */
  onSubmitted(): void {
    for (const [size, buffers] of this.recycled) {
      let list = this.free.get(size);
      if (!list) this.free.set(size, (list = []));
      list.push(...buffers);
      list.sort((a, b) => this.serials.get(a)! - this.serials.get(b)!);
    }
    this.recycled.clear();
    this.handedOutUnsubmitted.clear();
  }

  /** Destroys every free buffer (after a stage is unloaded, say). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const buffer of list) {
        this.stats_.bytesAllocated -= this.sizes.get(buffer)!;
        buffer.destroy();
      }
    }
    this.free.clear();
  }

  stats(): PoolStats {
    const count = (lists: Map<number, GPUBuffer[]>) => [...lists.values()].reduce((n, list) => n + list.length, 0);
    return { ...this.stats_, free: count(this.free), pending: count(this.recycled) };
  }
}
