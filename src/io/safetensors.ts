/**
 * safetensors readers (one file, or a sharded checkpoint through its index) and writer. A reader
 * loads the header only and then each tensor by offset, so multi-GB checkpoints never sit in memory
 * whole. Tensor bytes are little-endian and read through typed arrays: every host this project
 * targets is little-endian.
 */
import { openFileSource, writeFileAtomic, type ByteSource } from '../platform/file.js';
import { f16BitsToF32Bits, f32BitsToF16Bits } from '../runtime/dtype.js';
import {
  byteExtent,
  describe,
  dtypeSize,
  findDuplicateKey,
  formatShape,
  isCount,
  isDType,
  isFloatDType,
  isObject,
  MAX_HEADER_BYTES,
  parseJsonBytes,
  quote,
  readSafetensorsHeader,
  SafetensorsError,
  type FloatDType,
  type SafetensorsDType,
  type TensorInfo,
} from './safetensors_format.js';

export {
  dtypeSize,
  MAX_HEADER_BYTES,
  SafetensorsError,
  type FloatDType,
  type SafetensorsDType,
  type TensorInfo,
} from './safetensors_format.js';

/**
 * Chunk boundaries fall on multiples of this many bytes: a whole number of elements of every dtype,
 * and 4-byte aligned (as `GPUQueue.writeBuffer` needs) even after converting f64 or f32 to f16.
 */
export const CHUNK_ALIGN = 16;

/** A piece of a tensor's bytes; `offset` is where it starts within the tensor. */
export interface TensorChunk {
  readonly offset: number;
  readonly bytes: Uint8Array<ArrayBuffer>;
}

/** Tensor lookup shared by single files and sharded checkpoints. */
export interface TensorReader {
  readonly tensors: ReadonlyMap<string, TensorInfo>;
  readonly metadata: Readonly<Record<string, string>>;
  readRaw(name: string): Promise<Uint8Array<ArrayBuffer>>;
  /** F64, F32, F16 or BF16 as f32 values. */
  readF32(name: string): Promise<Float32Array<ArrayBuffer>>;
  /** F64, F32, F16 or BF16 as f16 bit patterns, rounded to nearest even as torch `.half()` does. */
  readF16Bits(name: string): Promise<Uint16Array<ArrayBuffer>>;
  /** I64 values, each of which must be a safe integer. */
  readI64AsNumbers(name: string): Promise<number[]>;
  /** The tensor's bytes in pieces of at most `maxBytes` (rounded down to CHUNK_ALIGN), read one at a time. */
  readChunks(name: string, maxBytes: number): AsyncIterable<TensorChunk>;
  close(): Promise<void>;
}

/** `bytes` as whole elements at an aligned offset of its buffer, copied only when misaligned. */
function elementsOf<B extends ArrayBufferLike>(
  bytes: Uint8Array<B>,
  elementSize: number,
): { buffer: B | ArrayBuffer; offset: number; count: number } {
  if (bytes.byteLength % elementSize !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes are not a whole number of ${elementSize}-byte elements`);
  }
  const usable = bytes.byteOffset % elementSize === 0 ? bytes : bytes.slice();
  return { buffer: usable.buffer, offset: usable.byteOffset, count: bytes.byteLength / elementSize };
}

/**
 * Little-endian F64/F32/F16/BF16 bytes (a whole tensor or a chunk of it) → f32 values. For F32 the
 * result is a view sharing memory with `bytes` (when aligned), not a copy.
 */
export function floatBytesToF32<B extends ArrayBufferLike>(
  dtype: FloatDType,
  bytes: Uint8Array<B>,
): Float32Array<B | ArrayBuffer> {
  const { buffer, offset, count } = elementsOf(bytes, dtypeSize(dtype));
  switch (dtype) {
    case 'F32':
      return new Float32Array(buffer, offset, count);
    case 'F64':
      return Float32Array.from(new Float64Array(buffer, offset, count));
    case 'F16': {
      const bits = new Uint16Array(buffer, offset, count);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = f16BitsToF32Bits(bits[i]);
      return new Float32Array(out.buffer);
    }
    case 'BF16': {
      const bits = new Uint16Array(buffer, offset, count);
      const out = new Uint32Array(count);
      for (let i = 0; i < count; i++) out[i] = bits[i] << 16;
      return new Float32Array(out.buffer);
    }
  }
}

/**
 * Little-endian F64/F32/F16/BF16 bytes → f16 bit patterns, rounded to nearest even (F64 goes through
 * f32, as in torch). For F16 the result is a view sharing memory with `bytes` (when aligned).
 */
export function floatBytesToF16Bits<B extends ArrayBufferLike>(
  dtype: FloatDType,
  bytes: Uint8Array<B>,
): Uint16Array<B | ArrayBuffer> {
  if (dtype === 'F16') {
    const { buffer, offset, count } = elementsOf(bytes, 2);
    return new Uint16Array(buffer, offset, count);
  }
  const values = floatBytesToF32(dtype, bytes);
  const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
  const out = new Uint16Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = f32BitsToF16Bits(bits[i]);
  return out;
}

export class SafetensorsFile implements TensorReader {
  private constructor(
    readonly source: ByteSource,
    /** In file order. */
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Readonly<Record<string, string>>,
  ) {}

  /** Reads and validates the header; the source stays open (and owned by the result) until `close`. */
  static async open(source: ByteSource): Promise<SafetensorsFile> {
    const { tensors, metadata } = await readSafetensorsHeader(source);
    return new SafetensorsFile(source, new Map(tensors.map((info) => [info.name, info])), metadata);
  }

  private info(name: string): TensorInfo {
    const info = this.tensors.get(name);
    if (info === undefined) throw new SafetensorsError(this.source.name, name, 'no such tensor in this file');
    return info;
  }

  private floatInfo(name: string): TensorInfo & { dtype: FloatDType } {
    const info = this.info(name);
    if (!isFloatDType(info.dtype)) {
      throw new SafetensorsError(this.source.name, name, `dtype ${info.dtype} is not a floating-point type`);
    }
    return info as TensorInfo & { dtype: FloatDType };
  }

  async readRaw(name: string): Promise<Uint8Array<ArrayBuffer>> {
    const info = this.info(name);
    return this.source.read(info.begin, info.end - info.begin);
  }

  async readF32(name: string): Promise<Float32Array<ArrayBuffer>> {
    const info = this.floatInfo(name);
    return floatBytesToF32(info.dtype, await this.readRaw(name));
  }

  async readF16Bits(name: string): Promise<Uint16Array<ArrayBuffer>> {
    const info = this.floatInfo(name);
    return floatBytesToF16Bits(info.dtype, await this.readRaw(name));
  }

  async readI64AsNumbers(name: string): Promise<number[]> {
    const info = this.info(name);
    if (info.dtype !== 'I64') {
      throw new SafetensorsError(this.source.name, name, `dtype is ${info.dtype}, expected I64`);
    }
    const { buffer, offset, count } = elementsOf(await this.readRaw(name), 8);
    const values = new BigInt64Array(buffer, offset, count);
    return Array.from(values, (value, index) => {
      const number = Number(value);
      if (!Number.isSafeInteger(number)) {
        throw new SafetensorsError(this.source.name, name, `value ${value} at index ${index} is not a safe integer`);
      }
      return number;
    });
  }

  async *readChunks(name: string, maxBytes: number): AsyncGenerator<TensorChunk> {
    const info = this.info(name);
    if (!Number.isSafeInteger(maxBytes) || maxBytes < CHUNK_ALIGN) {
      throw new RangeError(`chunk size must be an integer of at least ${CHUNK_ALIGN} bytes, got ${maxBytes}`);
    }
    const step = maxBytes - (maxBytes % CHUNK_ALIGN);
    const total = info.end - info.begin;
    for (let offset = 0; offset < total; offset += step) {
      yield { offset, bytes: await this.source.read(info.begin + offset, Math.min(step, total - offset)) };
    }
  }

  close(): Promise<void> {
    return this.source.close();
  }
}

export type SourceOpener = (path: string) => Promise<ByteSource>;

/** Opens `path` and parses its header, closing the source again if the header is rejected. */
async function openSafetensorsFile(path: string, openSource: SourceOpener): Promise<SafetensorsFile> {
  const source = await openSource(path);
  try {
    return await SafetensorsFile.open(source);
  } catch (err) {
    await source.close();
    throw err;
  }
}

/** `file` resolved against the folder of `indexPath`, which may be a local path or a URL. */
function siblingPath(indexPath: string, file: string): string {
  const cut = Math.max(indexPath.lastIndexOf('/'), indexPath.lastIndexOf('\\'));
  return indexPath.slice(0, cut + 1) + file;
}

function isPlainFileName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !/[/\\]/.test(name);
}

/** A `*.safetensors.index.json` checkpoint: `weight_map` sends each tensor name to its shard file. */
export class ShardedSafetensors implements TensorReader {
  private constructor(
    readonly indexPath: string,
    readonly tensors: ReadonlyMap<string, TensorInfo>,
    /** The index's `metadata` (e.g. total_size), non-string values JSON-encoded. */
    readonly metadata: Readonly<Record<string, string>>,
    private readonly shardOf: ReadonlyMap<string, SafetensorsFile>,
    readonly shards: readonly SafetensorsFile[],
  ) {}

  /** Opens every shard and checks that each holds the tensors the index maps to it. */
  static async open(indexPath: string, openSource: SourceOpener = openFileSource): Promise<ShardedSafetensors> {
    const fail = (problem: string, tensor?: string) => new SafetensorsError(indexPath, tensor, problem);
    const index = await readIndex(indexPath, openSource);
    const weightMap = index.weight_map;
    if (!isObject(weightMap)) throw fail(`weight_map must be a JSON object, got ${describe(weightMap)}`);
    if (index.metadata !== undefined && !isObject(index.metadata)) {
      throw fail(`metadata must be a JSON object, got ${describe(index.metadata)}`);
    }
    const metadata = Object.fromEntries(
      Object.entries(index.metadata ?? {}).map(([key, value]) => [
        key,
        typeof value === 'string' ? value : describe(value),
      ]),
    );
    for (const [name, file] of Object.entries(weightMap)) {
      if (typeof file !== 'string' || !isPlainFileName(file)) {
        throw fail(`weight_map must give a file name in the index's folder, got ${describe(file)}`, name);
      }
    }
    const byFile = new Map<string, SafetensorsFile>();
    try {
      for (const file of new Set(Object.values(weightMap) as string[])) {
        let shard: SafetensorsFile;
        try {
          shard = await openSafetensorsFile(siblingPath(indexPath, file), openSource);
        } catch (err) {
          if (err instanceof SafetensorsError) throw err;
          throw fail(`shard ${quote(file)} cannot be opened: ${err instanceof Error ? err.message : String(err)}`);
        }
        byFile.set(file, shard);
      }
      const tensors = new Map<string, TensorInfo>();
      const shardOf = new Map<string, SafetensorsFile>();
      for (const [name, file] of Object.entries(weightMap) as [string, string][]) {
        const shard = byFile.get(file) as SafetensorsFile;
        const info = shard.tensors.get(name);
        if (info === undefined) throw fail(`weight_map points to shard ${quote(file)}, which has no such tensor`, name);
        tensors.set(name, info);
        shardOf.set(name, shard);
      }
      return new ShardedSafetensors(indexPath, tensors, metadata, shardOf, [...byFile.values()]);
    } catch (err) {
      await Promise.all([...byFile.values()].map((shard) => shard.close()));
      throw err;
    }
  }

  private shard(name: string): SafetensorsFile {
    const shard = this.shardOf.get(name);
    if (shard === undefined) throw new SafetensorsError(this.indexPath, name, 'no such tensor in this checkpoint');
    return shard;
  }

  async readRaw(name: string): Promise<Uint8Array<ArrayBuffer>> {
    return this.shard(name).readRaw(name);
  }

  async readF32(name: string): Promise<Float32Array<ArrayBuffer>> {
    return this.shard(name).readF32(name);
  }

  async readF16Bits(name: string): Promise<Uint16Array<ArrayBuffer>> {
    return this.shard(name).readF16Bits(name);
  }

  async readI64AsNumbers(name: string): Promise<number[]> {
    return this.shard(name).readI64AsNumbers(name);
  }

  async *readChunks(name: string, maxBytes: number): AsyncGenerator<TensorChunk> {
    yield* this.shard(name).readChunks(name, maxBytes);
  }

  async close(): Promise<void> {
    await Promise.all(this.shards.map((shard) => shard.close()));
  }
}

async function readIndex(indexPath: string, openSource: SourceOpener): Promise<Record<string, unknown>> {
  const fail = (problem: string) => new SafetensorsError(indexPath, undefined, problem);
  const source = await openSource(indexPath);
  let bytes: Uint8Array;
  try {
    if (source.size > MAX_HEADER_BYTES) {
      throw fail(`index is ${source.size} bytes, over the ${MAX_HEADER_BYTES}-byte limit`);
    }
    bytes = await source.read(0, source.size);
  } finally {
    await source.close();
  }
  const parsed = parseJsonBytes(bytes);
  if (parsed === 'utf-8') throw fail('index is not valid UTF-8');
  if (parsed === 'json') throw fail('index is not valid JSON');
  const { text, value: index } = parsed;
  if (!isObject(index)) throw fail(`index must be a JSON object, got ${describe(index)}`);
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    throw fail(`duplicate key ${quote(duplicate.key)}${duplicate.under === undefined ? '' : ` in ${duplicate.under}`}`);
  }
  return index;
}

/** A single `.safetensors` file, or a sharded checkpoint when `path` ends in `.index.json`. */
export function openSafetensors(path: string, openSource: SourceOpener = openFileSource): Promise<TensorReader> {
  return path.endsWith('.index.json')
    ? ShardedSafetensors.open(path, openSource)
    : openSafetensorsFile(path, openSource);
}

export interface TensorToWrite {
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** The raw little-endian element bytes, e.g. a Float32Array for F32 or a Uint16Array of bits for F16/BF16. */
  readonly data: ArrayBufferView;
}

/** The 8-byte length + padded header, then each tensor's bytes: the canonical layout, sorted by name. */
function canonicalParts(
  file: string,
  tensors: Readonly<Record<string, TensorToWrite>>,
  metadata: Readonly<Record<string, string>> | undefined,
): Uint8Array[] {
  const entries: string[] = [];
  if (metadata !== undefined) entries.push(`"__metadata__":${JSON.stringify(metadata)}`);
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const name of Object.keys(tensors).sort()) {
    const { dtype, shape, data } = tensors[name];
    const fail = (problem: string) => new SafetensorsError(file, name, problem);
    if (name === '__metadata__') throw fail('this name is reserved for the metadata');
    if (!isDType(dtype)) throw fail(`unknown dtype ${describe(dtype)}`);
    if (!shape.every(isCount)) throw fail(`shape must be non-negative integers, got ${describe(shape)}`);
    const needed = byteExtent(shape, dtype);
    if (needed !== data.byteLength) {
      throw fail(
        `shape ${formatShape(shape)} of ${dtype} needs ${needed ?? 'too many'} bytes but data has ${data.byteLength}`,
      );
    }
    entries.push(
      `${JSON.stringify(name)}:${JSON.stringify({ dtype, shape, data_offsets: [offset, offset + data.byteLength] })}`,
    );
    blobs.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    offset += data.byteLength;
  }
  const json = new TextEncoder().encode(`{${entries.join(',')}}`);
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  const head = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLength), true);
  head.set(json, 8);
  return [head, ...blobs];
}

export function encodeSafetensors(
  tensors: Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const parts = canonicalParts('(in memory)', tensors, metadata);
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** Writes atomically: `path` holds either the old content or the complete new file, never a partial one. */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, TensorToWrite>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  await writeFileAtomic(path, canonicalParts(path, tensors, metadata));
}
