/**
 * Size-bucketed pool of storage buffers. A released buffer is parked until the commands that
 * used it have been submitted (`onSubmitted`), then it may be handed out again; WebGPU's queue
 * ordering makes reuse after submission safe without any CPU wait.
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
  pending: number;
  bytesAllocated: number;
  peakBytesAllocated: number;
}

export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  private pending: GPUBuffer[] = [];
  private readonly sizes = new WeakMap<GPUBuffer, number>();
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
    const list = this.free.get(size);
    const reused = list?.pop();
    this.stats_.live++;
    if (reused) {
      this.stats_.reused++;
      return reused;
    }
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.device.createBuffer({ size, usage: STORAGE_USAGE, label });
    this.onAllocate(label, size, this.device.popErrorScope());
    this.sizes.set(buffer, size);
    this.stats_.created++;
    this.stats_.bytesAllocated += size;
    this.stats_.peakBytesAllocated = Math.max(this.stats_.peakBytesAllocated, this.stats_.bytesAllocated);
    return buffer;
  }

  release(buffer: GPUBuffer): void {
    this.stats_.live--;
    this.pending.push(buffer);
  }

  /** Called after a queue submit: buffers released before it become reusable. */
  onSubmitted(): void {
    for (const buffer of this.pending) {
      const size = this.sizes.get(buffer)!;
      let list = this.free.get(size);
      if (!list) this.free.set(size, (list = []));
      list.push(buffer);
    }
    this.pending = [];
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
    let free = 0;
    for (const list of this.free.values()) free += list.length;
    return { ...this.stats_, free, pending: this.pending.length };
  }
}
