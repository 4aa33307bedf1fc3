import { describe, expect, it } from 'vitest';
import { SafetensorsError } from '../src/io/safetensors.js';
import { readSafetensorsHeader } from '../src/io/safetensors_format.js';
import { memorySource } from '../src/platform/file.js';
import { CHECKPOINTS } from './fuzz/fixtures.js';
import { formatCounts, runFuzz } from './fuzz/harness.js';
import { safetensorsSeeds, safetensorsTarget, type SafetensorsCase } from './fuzz/safetensors_cases.js';

// Bounded, seeded fuzzing of the safetensors header parser (scripts/fuzz.ts runs longer campaigns).
// Every case must end in a parsed header that tiles its file, or a SafetensorsError with a message
// of at most 2000 characters, within 2 s; anything else counts as a crash or a hang.
const SEED = 20261127;

describe('fuzz: safetensors header parser', () => {
  it('100,000 mutated headers: each a valid header or a SafetensorsError, none slow', async () => {
    // The decoder's 20 KB header is left out: mutating it costs 5× the others and finds nothing new.
    const seeds = await safetensorsSeeds([CHECKPOINTS.text_encoder, CHECKPOINTS.prior, CHECKPOINTS.vqgan]);
    const counts = await runFuzz(safetensorsTarget(seeds), 100_000, SEED);
    console.log(formatCounts(counts));
    expect(counts.failures).toEqual([]);
    expect({ cases: counts.cases, crashes: counts.crashes, hangs: counts.hangs }).toEqual({ cases: 100_000, crashes: 0, hangs: 0 });
    // Most mutations break the file; some keep it valid (metadata, whitespace, unknown keys).
    expect(counts.errors).toBeGreaterThan(90_000);
    expect(counts.results).toBeGreaterThan(100);
  }, 180_000);

  it('every truncation of every seed file is a SafetensorsError', async () => {
    const seeds = await safetensorsSeeds(Object.values(CHECKPOINTS));
    const target = safetensorsTarget(seeds);
    let cases = 0;
    for (const seed of seeds) {
      for (let cut = 0; cut < seed.head.byteLength; cut++) {
        const truncated: SafetensorsCase = { head: seed.head.subarray(0, cut), size: cut };
        await expect(target.run(truncated) as Promise<unknown>).rejects.toBeInstanceOf(SafetensorsError);
        cases++;
      }
    }
    console.log(`safetensors truncations: ${cases} cases run, ${cases} errors raised, 0 crashes, 0 hangs`);
    expect(cases).toBeGreaterThan(30_000);
  }, 120_000);

  it('names the problem for a header nested 100,000 deep and for a 100 MB length prefix', async () => {
    const nested = new TextEncoder().encode(`${'['.repeat(100_000)}${']'.repeat(100_000)}`);
    const file = new Uint8Array(8 + nested.byteLength);
    new DataView(file.buffer).setBigUint64(0, BigInt(nested.byteLength), true);
    file.set(nested, 8);
    await expect(readSafetensorsHeader(memorySource('deep.safetensors', file))).rejects.toThrow(
      new SafetensorsError('deep.safetensors', undefined, 'header must be a JSON object, got a deeply nested array'),
    );
    const prefix = new Uint8Array(16);
    new DataView(prefix.buffer).setBigUint64(0, 100_000_001n, true);
    await expect(readSafetensorsHeader(memorySource('big.safetensors', prefix))).rejects.toThrow(
      new SafetensorsError('big.safetensors', undefined, 'header length 100000001 exceeds the 100000000-byte limit (not a safetensors file?)'),
    );
  });
});
