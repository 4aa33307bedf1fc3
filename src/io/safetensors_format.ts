/**
 * The safetensors container format (https://github.com/huggingface/safetensors#format): dtypes, and
 * reading plus strict validation of the header.
 *
 * Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON
 * `{"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...}`, then the
 * data area, which `data_offsets` index. Validation is as strict as the reference Rust reader: tensors
 * must tile the data area exactly (no overlaps, gaps or trailing bytes).
 */
import type { ByteSource } from '../platform/file.js';

const DTYPE_SIZES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
} as const;

export type SafetensorsDType = keyof typeof DTYPE_SIZES;
export type FloatDType = 'F64' | 'F32' | 'F16' | 'BF16';

export function dtypeSize(dtype: SafetensorsDType): number {
  return DTYPE_SIZES[dtype];
}

export function isDType(value: unknown): value is SafetensorsDType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_SIZES, value);
}

export function isFloatDType(dtype: SafetensorsDType): dtype is FloatDType {
  return dtype === 'F64' || dtype === 'F32' || dtype === 'F16' || dtype === 'BF16';
}

/** The reference implementation's cap: a larger header means a corrupt or hostile file. */
export const MAX_HEADER_BYTES = 100_000_000;

export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Absolute byte offsets in `file`: the tensor is bytes [begin, end). */
  readonly begin: number;
  readonly end: number;
  /** Name of the byte source holding the tensor (a path or URL). */
  readonly file: string;
}

export class SafetensorsError extends Error {
  override name = 'SafetensorsError';

  constructor(
    readonly file: string,
    readonly tensor: string | undefined,
    problem: string,
  ) {
    super(`${file}: ${tensor === undefined ? '' : `tensor ${quote(tensor)}: `}${problem}`);
  }
}

/** A JSON-quoted string, shortened so a hostile name cannot flood an error message. */
export function quote(text: string): string {
  return JSON.stringify(text.length > 100 ? `${text.slice(0, 97)}...` : text);
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  // JSON.stringify would say null; 1e400 in a JSON file parses to Infinity.
  if (typeof value === 'number' && !Number.isFinite(value)) return String(value);
  let json: string;
  try {
    json = JSON.stringify(value);
  } catch {
    // Nesting deep enough to overflow JSON.stringify's recursion (JSON.parse has no such limit).
    return Array.isArray(value) ? 'a deeply nested array' : 'a deeply nested object';
  }
  return json.length > 100 ? `${json.slice(0, 97)}...` : json;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isCount(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

/** prod(shape) · size, or undefined when that is not a safe integer. */
export function byteExtent(shape: readonly number[], dtype: SafetensorsDType): number | undefined {
  let bytes = dtypeSize(dtype);
  for (const dim of shape) {
    bytes *= dim;
    if (!Number.isSafeInteger(bytes)) return undefined;
  }
  return bytes;
}

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** A JSON document's text and value, or why it is not one: 'utf-8' or 'json'. */
export function parseJsonBytes(bytes: Uint8Array): { text: string; value: unknown } | 'utf-8' | 'json' {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    return 'utf-8';
  }
  try {
    return { text, value: JSON.parse(text) };
  } catch {
    return 'json';
  }
}

/**
 * The first key that occurs twice in one object of `json` (already known to be valid JSON), with the
 * top-level key it sits under. JSON.parse silently keeps the last duplicate, so this scans the text.
 * Iterative, so deep nesting cannot overflow the stack.
 */
export function findDuplicateKey(json: string): { under: string | undefined; key: string } | undefined {
  const QUOTE = 0x22;
  const BACKSLASH = 0x5c;
  // One entry per open container: the keys seen so far (objects) or null (arrays).
  const open: (Set<string> | null)[] = [];
  const under: (string | undefined)[] = [];
  let lastTopKey: string | undefined;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json[i];
    if (json.charCodeAt(i) === QUOTE) {
      let j = i + 1;
      while (j < json.length && json.charCodeAt(j) !== QUOTE) j += json.charCodeAt(j) === BACKSLASH ? 2 : 1;
      if (expectKey) {
        const raw = json.slice(i + 1, j);
        const key: string = raw.includes('\\') ? JSON.parse(json.slice(i, j + 1)) : raw;
        const keys = open[open.length - 1] as Set<string>;
        if (keys.has(key)) return { under: under[under.length - 1], key };
        keys.add(key);
        if (open.length === 1) lastTopKey = key;
        expectKey = false;
      }
      i = j;
    } else if (c === '{' || c === '[') {
      under.push(open.length === 0 ? undefined : open.length === 1 ? lastTopKey : under[under.length - 1]);
      open.push(c === '{' ? new Set() : null);
      expectKey = c === '{';
    } else if (c === '}' || c === ']') {
      open.pop();
      under.pop();
    } else if (c === ',') {
      expectKey = open[open.length - 1] !== null;
    }
  }
  return undefined;
}

function parseMetadata(value: unknown, fail: (problem: string) => SafetensorsError): Record<string, string> {
  if (value === undefined) return {};
  if (!isObject(value)) throw fail(`__metadata__ must be a JSON object of strings, got ${describe(value)}`);
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') {
      throw fail(`__metadata__ value for key ${quote(key)} must be a string, got ${describe(item)}`);
    }
  }
  // fromEntries defines own properties, so a "__proto__" key stays plain data.
  return Object.fromEntries(Object.entries(value as Record<string, string>));
}

function parseEntry(
  file: string,
  name: string,
  entry: unknown,
  dataStart: number,
  dataSize: number,
): TensorInfo {
  const fail = (problem: string) => new SafetensorsError(file, name, problem);
  if (!isObject(entry)) throw fail(`entry must be a JSON object, got ${describe(entry)}`);
  const { dtype, shape, data_offsets: offsets } = entry;
  if (!isDType(dtype)) {
    throw fail(`dtype must be one of ${Object.keys(DTYPE_SIZES).join(', ')}; got ${describe(dtype)}`);
  }
  if (!Array.isArray(shape) || !shape.every(isCount)) {
    throw fail(`shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
    throw fail(`data_offsets must be [begin, end] with integers 0 <= begin <= end, got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  const needed = byteExtent(shape, dtype);
  if (needed !== end - begin) {
    throw fail(
      `shape ${formatShape(shape)} of ${dtype} needs ${needed ?? 'too many'} bytes ` +
        `but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  if (end > dataSize) {
    throw fail(`data_offsets [${begin}, ${end}] run past the end of the data area (${dataSize} bytes)`);
  }
  return { name, dtype, shape, begin: dataStart + begin, end: dataStart + end, file };
}

/** Tensors sorted by position must tile the data area exactly, as the reference reader demands. */
function checkTiling(file: string, sorted: readonly TensorInfo[], dataStart: number, dataEnd: number): void {
  let position = dataStart;
  let previous: TensorInfo | undefined;
  for (const tensor of sorted) {
    const range = `[${tensor.begin - dataStart}, ${tensor.end - dataStart}]`;
    if (previous !== undefined && tensor.begin < position) {
      throw new SafetensorsError(
        file,
        tensor.name,
        `data_offsets ${range} overlap tensor ${quote(previous.name)} ` +
          `at [${previous.begin - dataStart}, ${previous.end - dataStart}]`,
      );
    }
    if (tensor.begin > position) {
      throw new SafetensorsError(
        file,
        tensor.name,
        `data_offsets ${range} leave a gap after data offset ${position - dataStart} ` +
          '(tensors must be stored back to back)',
      );
    }
    position = tensor.end;
    if (tensor.end > tensor.begin) previous = tensor;
  }
  if (position < dataEnd) {
    throw new SafetensorsError(
      file,
      undefined,
      `${dataEnd - position} bytes after the last tensor are not described by the header`,
    );
  }
}

export interface SafetensorsHeader {
  /** Sorted by position in the file. */
  tensors: TensorInfo[];
  metadata: Record<string, string>;
}

export async function readSafetensorsHeader(source: ByteSource): Promise<SafetensorsHeader> {
  const file = source.name;
  const fail = (problem: string) => new SafetensorsError(file, undefined, problem);
  if (source.size < 8) {
    throw fail(`file is ${source.size} bytes long, shorter than the 8-byte header length that starts it`);
  }
  const prefix = await source.read(0, 8);
  const declared = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw fail(`header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit (not a safetensors file?)`);
  }
  const headerLength = Number(declared);
  if (8 + headerLength > source.size) {
    throw fail(`header length ${headerLength} runs past the end of the file (${source.size} bytes)`);
  }
  const parsed = parseJsonBytes(await source.read(8, headerLength));
  if (parsed === 'utf-8') throw fail('header is not valid UTF-8');
  if (parsed === 'json') throw fail('header is not valid JSON');
  const { text, value: header } = parsed;
  if (!isObject(header)) throw fail(`header must be a JSON object, got ${describe(header)}`);
  const duplicate = findDuplicateKey(text);
  if (duplicate !== undefined) {
    const { under, key } = duplicate;
    if (under === undefined) throw fail(`header names tensor ${quote(key)} twice`);
    if (under === '__metadata__') throw fail(`__metadata__ has key ${quote(key)} twice`);
    throw new SafetensorsError(file, under, `entry has key ${quote(key)} twice`);
  }
  const metadata = parseMetadata(header.__metadata__, fail);
  const dataStart = 8 + headerLength;
  const infos = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, entry]) => parseEntry(file, name, entry, dataStart, source.size - dataStart))
    .sort((a, b) => a.begin - b.begin || a.end - b.end);
  checkTiling(file, infos, dataStart, source.size);
  return { tensors: infos, metadata };
}
