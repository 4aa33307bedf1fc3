/**
 * Fuzz target: the safetensors header parser on mutated and truncated files. Seeds are real
 * checkpoint headers (their data areas stand in as zeros: the parser reads only the first 8 + N
 * bytes) and small files written by encodeSafetensors. Mutations work on bytes (flips, insertions,
 * deletions, truncation, the length prefix) and on the JSON (a node replaced by a hostile value,
 * duplicate keys, deep nesting), keeping the length prefix consistent so the JSON checks are reached.
 */
import { readFile } from 'node:fs/promises';
import { encodeSafetensors, SafetensorsError } from '../../src/io/safetensors.js';
import { readSafetensorsHeader, type SafetensorsHeader } from '../../src/io/safetensors_format.js';
import type { ByteSource } from '../../src/platform/file.js';
import type { FuzzTarget } from './harness.js';
import { mutateNode, toText, type Json } from './json_mutation.js';
import type { Random } from './random.js';

/** A file as the bytes the parser may read (prefix + header) and the size it claims. */
export interface SafetensorsCase {
  head: Uint8Array;
  size: number;
}

/** A source of `size` bytes whose first bytes are `head` and the rest zeros, without allocating them. */
function headSource({ head, size }: SafetensorsCase): ByteSource {
  const source: ByteSource = {
    name: 'fuzz.safetensors',
    size,
    async read(offset, length) {
      if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
        throw new RangeError(`read of ${length} bytes at ${offset} outside a ${size}-byte file`);
      }
      const out = new Uint8Array(length);
      if (offset < head.byteLength) out.set(head.subarray(offset, Math.min(head.byteLength, offset + length)));
      return out;
    },
    async close() {},
  };
  return source;
}

function headerOf(bytes: Uint8Array): SafetensorsCase {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  return { head: bytes.slice(0, 8 + n), size: bytes.byteLength };
}

/** Seed files: the header of each checkpoint in `paths`, and small synthetic files. */
export async function safetensorsSeeds(paths: readonly string[]): Promise<SafetensorsCase[]> {
  const seeds = await Promise.all(paths.map(async (p) => headerOf(new Uint8Array(await readFile(p)))));
  const f32 = (n: number) => new Float32Array(n).fill(0.5);
  seeds.push(
    headerOf(encodeSafetensors({})),
    headerOf(encodeSafetensors({ a: { dtype: 'F32', shape: [2, 3], data: f32(6) } }, { format: 'pt' })),
    headerOf(
      encodeSafetensors({
        'w.weight': { dtype: 'F16', shape: [4, 4], data: new Uint16Array(16) },
        'w.bias': { dtype: 'BF16', shape: [4], data: new Uint16Array(4) },
        ids: { dtype: 'I64', shape: [3], data: new BigInt64Array(3) },
        empty: { dtype: 'U8', shape: [0, 5], data: new Uint8Array(0) },
        scalar: { dtype: 'F64', shape: [], data: new Float64Array(1) },
      }),
    ),
  );
  return seeds;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function withPrefix(json: Uint8Array, size: (headerLength: number) => number): SafetensorsCase {
  const head = new Uint8Array(8 + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  head.set(json, 8);
  return { head, size: size(json.byteLength) };
}

/** JSON text tricks that JSON.stringify never writes: duplicate keys, deep nesting, odd escapes. */
function textTrick(random: Random, text: string): string {
  return random.weighted<() => string>([
    [2, () => text.replace(/^\{/, `{"${random.pick(['a', '__metadata__'])}":{},`).replace(/\}$/, `,"${random.pick(['a', '__metadata__'])}":{}}`)],
    [0.2, () => `{"__metadata__":${'{"a":'.repeat(20000)}1${'}'.repeat(20000)}}`],
    [1, () => text.replace(/"([a-z])/, '"\\u0000$1')],
    [1, () => text.replace(/"dtype"/, '"dt\\u0079pe"')],
    [1, () => `${text}${' '.repeat(random.int(64))}`],
    [1, () => text.replace(/,/g, () => (random.chance(0.1) ? ',,' : ','))],
  ])();
}

function mutateBytes(random: Random, c: SafetensorsCase): SafetensorsCase {
  const head = Uint8Array.from(c.head);
  const view = new DataView(head.buffer);
  return random.weighted<() => SafetensorsCase>([
    [3, () => {
      for (let k = random.between(1, 8); k > 0; k--) head[random.int(head.byteLength)] ^= 1 << random.int(8);
      return { head, size: c.size };
    }],
    [2, () => {
      const cut = random.int(head.byteLength + 1);
      return { head: head.slice(0, cut), size: Math.min(c.size, cut + random.pick([0, 0, 1, 7, 100])) };
    }],
    [2, () => {
      const at = random.int(head.byteLength);
      const insert = random.bytes(random.between(1, 16));
      const out = new Uint8Array(head.byteLength + insert.byteLength);
      out.set(head.subarray(0, at));
      out.set(insert, at);
      out.set(head.subarray(at), at + insert.byteLength);
      return { head: out, size: c.size + insert.byteLength };
    }],
    [1, () => {
      const at = 8 + random.int(Math.max(1, head.byteLength - 8));
      const rest = head.subarray(Math.min(head.byteLength, at + random.between(1, 16)));
      const out = new Uint8Array(Math.min(at, head.byteLength) + rest.byteLength);
      out.set(head.subarray(0, at));
      out.set(rest, out.byteLength - rest.byteLength);
      return { head: out, size: c.size };
    }],
    [2, () => {
      if (head.byteLength < 8) return { head, size: c.size };
      const n = Number(view.getBigUint64(0, true));
      const lengths = [0n, 1n, 7n, BigInt(n - 1), BigInt(n + 1), BigInt(n + 8), 100_000_000n, 100_000_001n, 2n ** 63n, 2n ** 64n - 1n];
      view.setBigUint64(0, random.pick(lengths), true);
      return { head, size: c.size };
    }],
    [1, () => ({ head, size: random.pick([0, 7, 8, head.byteLength, c.size + 1, c.size - 1, c.size * 2]) })],
    [1, () => {
      head.set(random.bytes(Math.max(0, head.byteLength - 8)), Math.min(8, head.byteLength));
      return { head, size: c.size };
    }],
  ])();
}

function mutateJson(random: Random, c: SafetensorsCase): SafetensorsCase {
  const dataSize = c.size - c.head.byteLength;
  let text = decoder.decode(c.head.subarray(8));
  try {
    const root = JSON.parse(text) as Json;
    for (let k = random.between(1, 3); k > 0; k--) mutateNode(random, root, ['__metadata__']);
    text = toText(random, root);
  } catch {
    // Already not JSON (an earlier mutation): text tricks only.
  }
  if (random.chance(0.3)) text = textTrick(random, text);
  const keepData = random.chance(0.8);
  return withPrefix(encoder.encode(text), (n) => 8 + n + (keepData ? dataSize : random.int(2 * dataSize + 2)));
}

/** A mutated file: one to three mutations stacked on a seed (small seeds favoured: they are cheaper). */
export function generateSafetensorsCase(random: Random, seeds: readonly SafetensorsCase[]): SafetensorsCase {
  let c = random.pick(seeds);
  if (c.head.byteLength > 1024 && random.chance(2 / 3)) c = random.pick(seeds);
  for (let k = random.between(1, 3); k > 0; k--) c = random.chance(0.4) ? mutateJson(random, c) : mutateBytes(random, c);
  return c;
}

export function safetensorsTarget(seeds: readonly SafetensorsCase[]): FuzzTarget<SafetensorsCase> {
  return {
    name: 'safetensors header',
    generate: (random) => generateSafetensorsCase(random, seeds),
    run: (c) => readSafetensorsHeader(headSource(c)),
    isTypedError: (err) => err instanceof SafetensorsError,
    checkResult(result, c) {
      const { tensors } = result as SafetensorsHeader;
      const dataStart = 8 + Number(new DataView(c.head.buffer, c.head.byteOffset, 8).getBigUint64(0, true));
      let position = dataStart;
      for (const t of tensors) {
        if (t.begin !== position || t.end < t.begin) return `tensor ${t.name} at [${t.begin}, ${t.end}) does not follow ${position}`;
        position = t.end;
      }
      return position === c.size ? undefined : `tensors end at ${position}, the file at ${c.size}`;
    },
    describe: (c) => `${c.size}-byte file, head ${JSON.stringify(decoder.decode(c.head.subarray(8, 200)))}`,
    timeBoundMs: 1000,
  };
}
