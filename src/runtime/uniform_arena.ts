/**
 * All small per-dispatch parameters of one submit live in one uniform buffer, in 256-byte slots.
 * The CPU copy is written with a single writeBuffer right before the submit; reusing the same GPU
 * buffer for the next batch is safe because queue operations execute in order.
 */

export const UNIFORM_SLOT = 256;

export class UniformArena {
  readonly buffer: GPUBuffer;
  private readonly staging: Uint8Array<ArrayBuffer>;
  private used = 0;

  constructor(device: GPUDevice, readonly capacity: number) {
    this.buffer = device.createBuffer({ size: capacity, usage: 0x40 | 0x08, label: 'uniform-arena' }); // UNIFORM | COPY_DST
    this.staging = new Uint8Array(capacity);
  }

  /** True when `bytes` more would not fit: the recorder must submit first. */
  wouldOverflow(bytes: number): boolean {
    return this.used + Math.ceil(bytes / UNIFORM_SLOT) * UNIFORM_SLOT > this.capacity;
  }

  /** Stages `data` and returns its binding range in the arena buffer. */
  push(data: Uint8Array): GPUBufferBinding {
    const offset = this.used;
    this.staging.set(data, offset);
    this.used += Math.ceil(Math.max(data.byteLength, 16) / UNIFORM_SLOT) * UNIFORM_SLOT;
    return { buffer: this.buffer, offset, size: Math.max(16, Math.ceil(data.byteLength / 16) * 16) };
  }

  /** Uploads what was staged since the last flush. */
  flush(queue: GPUQueue): void {
    if (this.used === 0) return;
    queue.writeBuffer(this.buffer, 0, this.staging, 0, this.used);
    this.used = 0;
  }
}

/** Packs a WGSL `Params` struct of 4-byte scalars, in declaration order. */
export class Params {
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private n = 0;

  constructor(capacity = 64) {
    this.bytes = new Uint8Array(capacity * 4);
    this.view = new DataView(this.bytes.buffer);
  }

  u32(...values: number[]): this {
    for (const v of values) this.view.setUint32(4 * this.n++, v, true);
    return this;
  }

  i32(...values: number[]): this {
    for (const v of values) this.view.setInt32(4 * this.n++, v, true);
    return this;
  }

  f32(...values: number[]): this {
    for (const v of values) this.view.setFloat32(4 * this.n++, v, true);
    return this;
  }

  data(): Uint8Array {
    return this.bytes.subarray(0, Math.max(16, Math.ceil((4 * this.n) / 16) * 16));
  }
}
