import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { CLIPTokenizer, CLIPTokenizerFast } from '../src/models/clip/tokenization_clip.js';
import { TOKENIZER_DIR } from './fuzz/fixtures.js';
import { formatCounts, runFuzz } from './fuzz/harness.js';
import { Random } from './fuzz/random.js';
import { hostileText, tokenizerTarget } from './fuzz/tokenizer_cases.js';

// Seeded fuzzing of both tokenizer classes on hostile Unicode (scripts/fuzz.ts runs longer
// campaigns), megabyte prompts in bounded time, and the heap-based BPE against the textbook loop.
const SEED = 20261127;
const VOCAB_SIZE = 49408;
/** Generous for a megabyte on a loaded 2-core CI machine; about 3 s on an idle one. */
const MEGABYTE_BOUND_MS = 30_000;

let slow: CLIPTokenizer;
let fast: CLIPTokenizerFast;

beforeAll(async () => {
  slow = await CLIPTokenizer.fromPretrained(TOKENIZER_DIR);
  fast = await CLIPTokenizerFast.fromPretrained(TOKENIZER_DIR);
});

/** `CLIPTokenizer.bpe` as transformers writes it: each pass rescans the word for the best pair and merges every occurrence. */
function textbookBpe(word: string, ranks: Map<string, number>): string[] {
  let symbols = [...word.slice(0, -1), `${word.slice(-1)}</w>`];
  for (;;) {
    let best: [string, string] | undefined;
    let bestRank = Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const rank = ranks.get(`${symbols[i]} ${symbols[i + 1]}`) ?? Infinity;
      if (rank < bestRank) [best, bestRank] = [[symbols[i], symbols[i + 1]], rank];
    }
    if (!best) return symbols;
    const merged: string[] = [];
    for (let i = 0; i < symbols.length; i++) {
      if (symbols[i] === best[0] && symbols[i + 1] === best[1]) merged.push(symbols[i] + symbols[++i]);
      else merged.push(symbols[i]);
    }
    symbols = merged;
  }
}

describe('fuzz: CLIP tokenizers on hostile text', () => {
  it('CLIPTokenizerFast: 150 random prompt batches all give 77 valid ids per prompt, none slow', async () => {
    const counts = await runFuzz(tokenizerTarget(fast, VOCAB_SIZE), 150, SEED);
    console.log(formatCounts(counts));
    expect(counts.failures).toEqual([]);
    expect({ cases: counts.cases, results: counts.results, crashes: counts.crashes, hangs: counts.hangs }).toEqual({ cases: 150, results: 150, crashes: 0, hangs: 0 });
  }, 120_000);

  it('CLIPTokenizer (slow): 100 random prompt batches likewise', async () => {
    const counts = await runFuzz(tokenizerTarget(slow, VOCAB_SIZE), 100, SEED + 1);
    console.log(formatCounts(counts));
    expect(counts.failures).toEqual([]);
    expect({ cases: counts.cases, results: counts.results, crashes: counts.crashes, hangs: counts.hangs }).toEqual({ cases: 100, results: 100, crashes: 0, hangs: 0 });
  }, 120_000);

  it('a 1 MB single word (fast) and 1 MB of mixed hostile text (slow) give 77 ids and a truncation report in bounded time', async () => {
    const random = new Random(SEED);
    const word = Array.from({ length: 1 << 20 }, () => String.fromCharCode(random.between(0x61, 0x7a))).join('');
    let mixed = '';
    while (mixed.length < 1 << 20) mixed += hostileText(random, 50);
    for (const [tokenizer, text] of [[fast, word], [slow, mixed]] as const) {
      const start = performance.now();
      const out = tokenizer.call(text);
      const ms = performance.now() - start;
      console.log(`${tokenizer.constructor.name}: ${text.length} characters → ${out.input_ids[0].length} ids in ${ms.toFixed(0)} ms`);
      expect(out.input_ids[0]).toHaveLength(77);
      expect(out.input_ids[0].at(-1)).toBe(tokenizer.eosTokenId);
      expect(out.truncatedText?.[0].length).toBeGreaterThan(100_000);
      expect(ms).toBeLessThan(MEGABYTE_BOUND_MS);
    }
  }, 120_000);

  it('the heap-based BPE merges exactly as the textbook loop on 400 random words (up to 2000 letters)', async () => {
    const merges = (await readFile(join(TOKENIZER_DIR, 'merges.txt'), 'utf8')).split('\n').slice(1).filter(Boolean);
    const ranks = new Map(merges.map((m, i) => [m, i]));
    const random = new Random(SEED);
    let compared = 0;
    for (let i = 0; i < 400; i++) {
      // Few distinct letters make repeated and overlapping pairs ("aaaa", "abab"), where pass order matters.
      const alphabet = random.pick(['ab', 'aeiou', 'abcdefghijklmnopqrstuvwxyz', 'mississippi']);
      const length = random.chance(0.05) ? random.between(500, 2000) : random.between(1, 60);
      const word = Array.from({ length }, () => random.pick([...alphabet])).join('');
      expect(slow.tokenize(word), word).toEqual(textbookBpe(word, ranks));
      compared++;
    }
    expect(compared).toBe(400);
  }, 120_000);
});
