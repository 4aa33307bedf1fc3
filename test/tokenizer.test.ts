import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../src/cli/main.js';
import { basicTokenizerClean } from '../src/models/clip/clip_text_normalization.js';
import { CLIPTokenizer, CLIPTokenizerFast, truncationWarning } from '../src/models/clip/tokenization_clip.js';
import { localTokenizerFolder, type TokenizerFolder } from '../src/models/clip/tokenizer_files.js';

// Goldens: ../shared/golden/tokenizer/ (prompts.json, and vocab.json + merges.txt as written by the slow
// CLIPTokenizer), pipelines/wuerstchen-prior/tokenizer/ (as written by CLIPTokenizerFast, config included)
// and the in.input_ids of io/text_encoder_{prior,decoder}.safetensors. Every comparison is exact.
const GOLDEN_DIR = fileURLToPath(new URL('./fixtures/tokenizer/', import.meta.url));
const PIPELINE_DIR = fileURLToPath(new URL('./fixtures/pipelines/wuerstchen-prior/tokenizer/', import.meta.url));

interface Encoding {
  input_ids: number[];
  attention_mask: number[];
  tokens?: string[];
}
interface GoldenCase extends Encoding {
  index: number;
  prompt: string;
  tokens: string[];
  input_ids_untruncated?: number[];
  truncated: boolean;
  cleaned_text_basic_tokenizer: string;
  variants: { hf_fast: { same_as_primary: boolean } & Partial<Encoding> };
}
interface IoIds {
  files: Record<string, { prompts: string[]; input_ids: number[][]; attention_mask: number[][] }>;
}

const golden = JSON.parse(await readFile(join(GOLDEN_DIR, 'prompts.json'), 'utf8')) as { cases: GoldenCase[] };
const cases = golden.cases;
const ioIds = JSON.parse(await readFile(join(GOLDEN_DIR, 'text_encoder_io_ids.json'), 'utf8')) as IoIds;

/** What CLIPTokenizerFast gives: the hf_fast variant where it differs from the primary (slow) ids. */
function fastGolden(c: GoldenCase): Encoding {
  const variant = c.variants.hf_fast;
  return variant.same_as_primary ? c : (variant as Encoding);
}

/** The cases whose encoding differs from the expected one, as `index prompt`, so a failure names them. */
function mismatches(tokenizer: CLIPTokenizer, expected: (c: GoldenCase) => Encoding): string[] {
  return cases
    .filter((c) => {
      const { input_ids, attention_mask } = tokenizer.call(c.prompt);
      const want = expected(c);
      const got = [input_ids[0], attention_mask[0]];
      return JSON.stringify(got) !== JSON.stringify([want.input_ids, want.attention_mask]);
    })
    .map((c) => `${c.index} ${JSON.stringify(c.prompt)}`);
}

/** The pipeline folder with some files replaced (a string) or hidden (undefined). */
function pipelineFolderWith(files: Record<string, string | undefined>): TokenizerFolder {
  const local = localTokenizerFolder(PIPELINE_DIR);
  return {
    name: 'patched-folder',
    readText: async (file) => (file in files ? files[file] : local.readText(file)),
  };
}

let slow: CLIPTokenizer;
let fast: CLIPTokenizerFast;
beforeAll(async () => {
  slow = await CLIPTokenizer.fromPretrained(GOLDEN_DIR);
  fast = await CLIPTokenizerFast.fromPretrained(PIPELINE_DIR);
});

describe('CLIPTokenizer (slow, no ftfy) against the 150 golden prompts', () => {
  it('gives exactly the golden input_ids and attention_mask for every prompt', () => {
    expect(cases).toHaveLength(150);
    expect(mismatches(slow, (c) => c)).toEqual([]);
  });

  it('gives the golden untruncated BPE tokens and ids, and the BasicTokenizer text', () => {
    const wrong = cases.filter(
      (c) =>
        JSON.stringify(['<|startoftext|>', ...slow.tokenize(c.prompt), '<|endoftext|>']) !== JSON.stringify(c.tokens) ||
        (c.input_ids_untruncated !== undefined &&
          JSON.stringify(slow.encode(c.prompt)) !== JSON.stringify(c.input_ids_untruncated)) ||
        basicTokenizerClean(c.prompt) !== c.cleaned_text_basic_tokenizer,
    );
    expect(wrong.map((c) => c.index)).toEqual([]);
  });

  it('matches the hf_fast ids on the 141 prompts where the golden says slow and fast agree', () => {
    expect(mismatches(slow, fastGolden)).toHaveLength(150 - 141);
  });
});

describe('CLIPTokenizerFast (the class the released repos name) against the 150 golden prompts', () => {
  it('gives exactly the hf_fast input_ids and attention_mask for every prompt', () => {
    expect(mismatches(fast, fastGolden)).toEqual([]);
  });

  it('gives the hf_fast BPE tokens where they differ from the slow ones (CJK, U+200B, U+00AD, U+FEFF, ZWJ)', () => {
    const differing = cases.filter((c) => !c.variants.hf_fast.same_as_primary);
    expect(differing.map((c) => c.index)).toEqual([79, 80, 81, 95, 96, 97, 105, 106, 108]);
    for (const c of differing) {
      expect(['<|startoftext|>', ...fast.tokenize(c.prompt), '<|endoftext|>'], `case ${c.index}`).toEqual(
        c.variants.hf_fast.tokens,
      );
    }
  });
});

describe('tokenizer folders', () => {
  it('reads pad, BOS and EOS and model_max_length from the wuerstchen-prior config', () => {
    expect([fast.padTokenId, fast.bosTokenId, fast.eosTokenId, fast.modelMaxLength]).toEqual([49407, 49406, 49407, 77]);
  });

  it('takes the pad token from special_tokens_map.json over tokenizer_config.json', async () => {
    const map = JSON.parse(await readFile(join(PIPELINE_DIR, 'special_tokens_map.json'), 'utf8')) as object;
    const patched = await CLIPTokenizerFast.fromPretrained(
      pipelineFolderWith({ 'special_tokens_map.json': JSON.stringify({ ...map, pad_token: '!' }) }),
    );
    expect(patched.padTokenId).toBe(0);
    const { input_ids, attention_mask } = patched.call('a photo of a cat');
    expect(input_ids[0]).toEqual([...cases[0].input_ids.slice(0, 7), ...new Array(70).fill(0)]);
    expect(attention_mask[0]).toEqual(cases[0].attention_mask);
  });

  it('loads a folder holding only tokenizer.json (+ config) to the same ids on all 150 prompts', async () => {
    const read: string[] = [];
    const local = localTokenizerFolder(PIPELINE_DIR);
    const folder: TokenizerFolder = {
      name: 'tokenizer.json only',
      readText: async (file) => {
        read.push(file);
        return file === 'vocab.json' || file === 'merges.txt' ? undefined : local.readText(file);
      },
    };
    const fromJson = await CLIPTokenizerFast.fromPretrained(folder);
    expect(read).toContain('tokenizer.json');
    expect(fromJson.padTokenId).toBe(49407);
    expect(mismatches(fromJson, fastGolden)).toEqual([]);
  });

  it('names the missing files when a folder has no tokenizer', async () => {
    const empty: TokenizerFolder = { name: '/nowhere', readText: async () => undefined };
    await expect(CLIPTokenizer.fromPretrained(empty)).rejects.toThrow(
      '/nowhere: no tokenizer files: expected vocab.json and merges.txt, or tokenizer.json',
    );
  });
});

describe('text encoder io goldens', () => {
  it.each(['text_encoder_prior', 'text_encoder_decoder'])('%s: both classes give its in.input_ids and mask', (name) => {
    const { prompts, input_ids, attention_mask } = ioIds.files[name];
    for (const tokenizer of [slow, fast]) {
      const out = tokenizer.call(prompts);
      expect(out.input_ids).toEqual(input_ids);
      expect(out.attention_mask).toEqual(attention_mask);
    }
  });
});

describe('truncation', () => {
  const long = cases[138]; // 100 × "cat": 102 tokens untruncated

  it('keeps EOS last and, without truncation, returns the golden untruncated ids', () => {
    expect(long.truncated).toBe(true);
    expect(fast.call(long.prompt).input_ids[0].at(-1)).toBe(49407);
    expect(fast.call(long.prompt, { truncation: false }).input_ids[0]).toEqual(long.input_ids_untruncated);
  });

  it('reports the removed text as diffusers encode_prompt does', () => {
    const { truncatedText } = fast.call(long.prompt);
    expect(truncatedText).toEqual([new Array(25).fill('cat').join(' ')]);
    expect(truncationWarning(['cat', "it's"], 77)).toBe(
      'The following part of your input was truncated because CLIP can only handle sequences up to 77 tokens: ' +
        `['cat', "it's"]`,
    );
    expect(fast.call(cases[136].prompt).truncatedText).toBeUndefined(); // exactly 77 tokens
  });

  it('decodes the padding of a shorter prompt in a truncated batch, like diffusers batch_decode', () => {
    const { truncatedText } = fast.call([cases[137].prompt, 'a photo of a cat']); // 78 and 7 tokens
    expect(truncatedText).toEqual(['cat', '<|endoftext|>']);
  });
});

describe('wuerstchen tokenize', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'wuerstchen-tokenize-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function runCli(args: string[]): Promise<{ code: number; warned: string[]; errors: string[] }> {
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const code = await main(['tokenize', ...args]);
      const messages = (spy: typeof warn) => spy.mock.calls.map((c) => String(c[0]));
      return { code, warned: messages(warn), errors: messages(error) };
    } finally {
      warn.mockRestore();
      error.mockRestore();
      log.mockRestore();
    }
  }

  it('writes the hf_fast ids of prompts.json (default CLIPTokenizerFast), warning per truncated prompt', async () => {
    const out = join(dir, 'fast.json');
    const prompts = join(GOLDEN_DIR, 'prompts.json');
    const { code, warned } = await runCli(['--tokenizer', PIPELINE_DIR, '--prompts', prompts, '--out', out]);
    expect(code).toBe(0);
    const rows = JSON.parse(await readFile(out, 'utf8')) as Encoding[];
    const expected = cases.map(fastGolden);
    expect(rows).toEqual(expected.map(({ input_ids, attention_mask }) => ({ input_ids, attention_mask })));
    const truncated = warned.map((w) => w.slice(0, w.indexOf(':')));
    expect(truncated).toEqual(['prompt 137', 'prompt 138', 'prompt 142', 'prompt 143']);
    expect(warned[0]).toBe(`prompt 137: ${truncationWarning(['cat'], 77)}`);
  });

  it('takes a JSON array of strings and --class CLIPTokenizer', async () => {
    const prompts = join(dir, 'prompts.json');
    const out = join(dir, 'slow.json');
    const picked = [cases[0], cases[97], cases[122]];
    await writeFile(prompts, JSON.stringify(picked.map((c) => c.prompt)));
    const args = ['--tokenizer', GOLDEN_DIR, '--prompts', prompts, '--out', out, '--class', 'CLIPTokenizer'];
    const { code, warned } = await runCli(args);
    expect(code).toBe(0);
    expect(warned).toEqual([]);
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual(
      picked.map((c) => ({ input_ids: c.input_ids, attention_mask: c.attention_mask })),
    );
  });

  it('rejects an unknown class and a prompts file of the wrong shape', async () => {
    const out = join(dir, 'never-written.json');
    const prompts = join(GOLDEN_DIR, 'prompts.json');
    const badClass = await runCli(['--tokenizer', PIPELINE_DIR, '--prompts', prompts, '--out', out, '--class', 'Bert']);
    expect(badClass).toMatchObject({
      code: 1,
      errors: ["wuerstchen tokenize: --class must be one of CLIPTokenizer, CLIPTokenizerFast, got 'Bert'"],
    });
    const vocab = join(GOLDEN_DIR, 'vocab.json');
    const badPrompts = await runCli(['--tokenizer', PIPELINE_DIR, '--prompts', vocab, '--out', out]);
    const shape = 'expected a JSON array of strings, or an object with "cases": [{ "prompt": "..." }]';
    expect(badPrompts).toMatchObject({ code: 1, errors: [`wuerstchen tokenize: ${vocab}: ${shape}`] });
  });
});
