/**
 * A checkpoint that exists only as names and shapes (a manifest of a real, multi-GB file): a
 * `TensorReader` whose tensors synthesise deterministic pseudo-random values when read, chunk by
 * chunk, so full-size models can be loaded and run without the file on disk or in memory.
 */
import { f32ArrayToF16Bits } from '../runtime/dtype.js';
import { CHUNK_ALIGN, SafetensorsError, type TensorChunk, type TensorInfo, type TensorReader } from './safetensors.js';

export interface TensorSpec {
  readonly name: string;
  readonly shape: readonly number[];
}

/** The `entries` of a golden manifest (../shared/golden/manifests/*.json). */
export function manifestTensors(manifest: unknown): TensorSpec[] {
  const entries = (manifest as { entries?: unknown }).entries;
  if (!Array.isArray(entries)) throw new Error('manifest has no "entries" array');
  return entries.map((e: { name?: unknown; shape?: unknown }, i) => {
    if (typeof e.name !== 'string' || !Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`manifest entry ${i} needs a string "name" and an integer "shape"`);
    }
    return { name: e.name, shape: e.shape as number[] };
  });
}

// One table of unit-variance values is shared by every tensor (each starts at its own offset):
// generating ~1e9 fresh random numbers would dominate a full-size load.
const TABLE_SIZE = 1 << 20;

function unitTable(seed: number): Float32Array {
  const table = new Float32Array(TABLE_SIZE);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < TABLE_SIZE; i++) {
    // xorshift32 → uniform on [-√3, √3): mean 0, variance 1.
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    table[i] = ((s >>> 0) / 2 ** 32 - 0.5) * 2 * Math.sqrt(3);
  }
  return table;
}

function hashName(name: string): number {
  let h = 2166136261;
  for (let i = 0; i < name.length; i++) h = Math.imul(h ^ name.charCodeAt(i), 16777619);
  return h >>> 0;
}

/**
 * Values have standard deviation 1/√fan-in (fan-in = elements per output row), so activations stay
 * in range through deep stacks; 1-D tensors (biases, norm weights) get 0.02.
 */
function scaleOf(shape: readonly number[]): number {
  if (shape.length < 2) return 0.02;
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  return 1 / Math.sqrt(Math.max(1, fanIn));
}

export interface SyntheticCheckpointOptions {
  /** Stored dtype the tensors claim (the loader converts as it would for a real file). */
  dtype: 'F32' | 'F16';
  /** Names the checkpoint in errors. */
  name: string;
  seed?: number;
}

export class SyntheticCheckpoint implements TensorReader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>> = { format: 'pt' };
  private readonly unit: Float32Array;
  private readonly scaled = new Map<number, { f32: Float32Array; f16?: Uint16Array }>();

  constructor(specs: readonly TensorSpec[], readonly options: SyntheticCheckpointOptions) {
    const size = options.dtype === 'F16' ? 2 : 4;
    const tensors = new Map<string, TensorInfo>();
    let offset = 0;
    for (const { name, shape } of specs) {
      const bytes = shape.reduce((a, b) => a * b, 1) * size;
      tensors.set(name, { name, dtype: options.dtype, shape: [...shape], begin: offset, end: offset + bytes, file: options.name });
      offset += bytes;
    }
    this.tensors = tensors;
    this.unit = unitTable(options.seed ?? 1);
  }

  private info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (!info) throw new SafetensorsError(this.options.name, name, 'no such tensor in this file');
    return info;
  }

  /** The unit table scaled for one tensor, as f32 and (converted on first use) as f16 bits. */
  private table(scale: number, as: 'f32' | 'f16'): Float32Array | Uint16Array {
    let t = this.scaled.get(scale);
    if (!t) this.scaled.set(scale, (t = { f32: this.unit.map((v) => v * scale) }));
    if (as === 'f32') return t.f32;
    t.f16 ??= f32ArrayToF16Bits(t.f32);
    return t.f16;
  }

  /** Elements [start, start + out.length) of the tensor, in the representation of `out`. */
  private fill(info: TensorInfo, start: number, out: Float32Array | Uint16Array): void {
    const src = this.table(scaleOf(info.shape), out instanceof Float32Array ? 'f32' : 'f16');
    let pos = (hashName(info.name) + start) % TABLE_SIZE;
    for (let done = 0; done < out.length; ) {
      const n = Math.min(out.length - done, TABLE_SIZE - pos);
      out.set(src.subarray(pos, pos + n), done);
      done += n;
      pos = 0;
    }
  }

  private elements(info: TensorInfo): number {
    return info.shape.reduce((a, b) => a * b, 1);
  }

  async readRaw(name: string): Promise<Uint8Array<ArrayBuffer>> {
    const info = this.info(name);
    const values = info.dtype === 'F16' ? await this.readF16Bits(name) : await this.readF32(name);
    return new Uint8Array(values.buffer);
  }

  async readF32(name: string): Promise<Float32Array<ArrayBuffer>> {
    const info = this.info(name);
    const out = new Float32Array(this.elements(info));
    this.fill(info, 0, out);
    return out;
  }

  async readF16Bits(name: string): Promise<Uint16Array<ArrayBuffer>> {
    const info = this.info(name);
    const out = new Uint16Array(this.elements(info));
    this.fill(info, 0, out);
    return out;
  }

  async readI64AsNumbers(name: string): Promise<number[]> {
    throw new SafetensorsError(this.options.name, name, `dtype is ${this.info(name).dtype}, expected I64`);
  }

  async *readChunks(name: string, maxBytes: number): AsyncGenerator<TensorChunk> {
    const info = this.info(name);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < CHUNK_ALIGN) {
      throw new RangeError(`chunk size must be an integer of at least ${CHUNK_ALIGN} bytes, got ${maxBytes}`);
    }
    const size = info.dtype === 'F16' ? 2 : 4;
    const step = (maxBytes - (maxBytes % CHUNK_ALIGN)) / size;
    const total = this.elements(info);
    for (let start = 0; start < total; start += step) {
      const n = Math.min(step, total - start);
      const out = info.dtype === 'F16' ? new Uint16Array(n) : new Float32Array(n);
      this.fill(info, start, out);
      yield { offset: start * size, bytes: new Uint8Array(out.buffer) };
    }
  }

  async close(): Promise<void> {}
}
