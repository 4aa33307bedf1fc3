/** A device tensor: shape, element type and a range of a GPU buffer (contiguous, row-major). */
import { bytesPerElement, type DType } from './dtype.js';

export interface TensorOwner {
  releaseTensorBuffer(buffer: GPUBuffer): void;
  track(tensor: Tensor): void;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export class Tensor {
  readonly size: number;
  private disposed = false;

  constructor(
    readonly owner: TensorOwner,
    readonly shape: readonly number[],
    readonly dtype: DType,
    readonly buffer: GPUBuffer,
    /** Bytes into `buffer`; a multiple of the storage offset alignment (256). */
    readonly byteOffset = 0,
    /** The tensor whose buffer a view shares; null for a tensor that owns its buffer. */
    readonly base: Tensor | null = null,
  ) {
    this.size = numel(shape);
    owner.track(this);
  }

  get byteSize(): number {
    return this.size * bytesPerElement(this.dtype);
  }

  /** Binding of the whole tensor, rounded up to 4 bytes as WebGPU requires. */
  get binding(): GPUBufferBinding {
    this.assertAlive();
    return { buffer: this.buffer, offset: this.byteOffset, size: Math.ceil(this.byteSize / 4) * 4 };
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Same data, another shape with the same number of elements. */
  reshape(shape: readonly number[]): Tensor {
    this.assertAlive();
    const resolved = resolveShape(shape, this.size);
    return new Tensor(this.owner, resolved, this.dtype, this.buffer, this.byteOffset, this.base ?? this);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (!this.base) this.owner.releaseTensorBuffer(this.buffer);
  }

  assertAlive(): void {
    if (this.disposed) throw new Error(`tensor [${this.shape.join(', ')}] ${this.dtype} used after dispose`);
  }

  toString(): string {
    return `Tensor[${this.shape.join('x')} ${this.dtype}]`;
  }
}

function resolveShape(shape: readonly number[], size: number): number[] {
  const out = [...shape];
  const infer = out.indexOf(-1);
  if (infer >= 0) out[infer] = size / numel(out.filter((_, i) => i !== infer));
  if (numel(out) !== size || !out.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new Error(`cannot reshape ${size} elements to [${shape.join(', ')}]`);
  }
  return out;
}
