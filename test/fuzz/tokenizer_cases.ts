/**
 * Fuzz target: CLIP tokenization of hostile text. Strings mix scripts and code points that break
 * naive text handling: lone surrogates, combining marks, right-to-left text and overrides, emoji
 * with joiners and modifiers, CJK, control and format characters, exotic spaces, fragments of the
 * special tokens, and long runs that make one huge BPE "word". Every prompt must give 77 ids that
 * start with BOS, end in EOS or padding, and lie in the vocabulary.
 */
import type { CLIPTokenizer } from '../../src/models/clip/tokenization_clip.js';
import type { FuzzTarget } from './harness.js';
import type { Random } from './random.js';

const fromCodes = (...codes: number[]) => String.fromCharCode(...codes);

/** Pieces a hostile prompt is built from, each a generator of one short string. */
const PIECES: readonly (readonly [number, (r: Random) => string])[] = [
  [6, (r) => r.pick(['a', 'photo', 'of', 'cat', 'The', 'DOG', "it's", "we'll", '42', '3.14', '!', '?', ',', '.', '-', '"', '#'])],
  [2, (r) => String.fromCharCode(r.between(0x21, 0x7e))],
  [2, (r) => String.fromCharCode(r.between(0xa0, 0x24f))],
  [2, (r) => String.fromCharCode(r.between(0x300, 0x36f))], // combining marks
  [2, (r) => String.fromCharCode(r.between(0x5d0, 0x5ea), r.between(0x600, 0x6ff))], // Hebrew, Arabic
  [1, (r) => r.pick(['\u202e', '\u202d', '\u2066', '\u2067', '\u2069', '\u200f', '\u200e'])], // bidi controls
  [2, (r) => String.fromCodePoint(r.between(0x1f300, 0x1faff))], // emoji
  [1, (r) => `${String.fromCodePoint(r.between(0x1f466, 0x1f469))}\u200d${String.fromCodePoint(r.between(0x1f466, 0x1f469))}`],
  [1, (r) => `\u{1f44d}${String.fromCodePoint(r.between(0x1f3fb, 0x1f3ff))}`], // skin tone
  [1, (r) => String.fromCodePoint(r.between(0x1f1e6, 0x1f1ff), r.between(0x1f1e6, 0x1f1ff))], // flags
  [2, (r) => String.fromCharCode(r.between(0x4e00, 0x9fff), r.between(0x3040, 0x30ff), r.between(0xac00, 0xd7a3))],
  [1, (r) => fromCodes(r.between(0xd800, 0xdfff))], // a lone surrogate
  [1, (r) => fromCodes(r.between(0xdc00, 0xdfff), r.between(0xd800, 0xdbff))], // surrogates in the wrong order
  [1, (r) => String.fromCharCode(r.between(0, 0x1f), 0x7f, r.between(0x80, 0x9f))], // C0/C1 controls
  [1, (r) => r.pick(['\u00ad', '\u200b', '\ufeff', '\u2060', '\ufffd', '\ufffe', '\uffff'])],
  [2, (r) => r.pick([' ', '  ', '\t', '\n', '\r\n', '\u00a0', '\u2028', '\u3000', '\u0085', '\u180e'])],
  [1, (r) => r.pick(['<|endoftext|>', '<|startoftext|>', '<|endoftext', '|>', '<|', '<|ENDOFTEXT|>', '</w>'])],
  [1, (r) => r.pick(['İ', 'ß', 'ẞ', 'Σ', 'ΣΣ', 'ﬁ', 'ǅ', 'Å', 'Å'])], // case mapping and normalisation
  [1, (r) => 'x'.repeat(r.between(100, 1000))],
  [1, (r) => Array.from({ length: r.between(50, 500) }, () => String.fromCharCode(r.between(0x61, 0x7a))).join('')],
];

export function hostileText(random: Random, pieces: number): string {
  let text = '';
  for (let i = 0; i < pieces; i++) text += random.weighted(PIECES)(random);
  return text;
}

export interface TokenizerCase {
  prompts: string[];
}

export function tokenizerTarget(tokenizer: CLIPTokenizer, vocabSize: number): FuzzTarget<TokenizerCase> {
  return {
    name: `${tokenizer.constructor.name} on hostile text`,
    generate: (random) => ({
      prompts: Array.from({ length: random.weighted([[8, 1], [1, 2], [1, 4]]) }, () => hostileText(random, random.weighted([[6, random.int(20)], [3, random.between(20, 200)], [1, random.between(200, 400)]]))),
    }),
    run: (c) => tokenizer.call(c.prompts),
    // Tokenizing never fails: every string has ids.
    isTypedError: () => false,
    checkResult(result, c) {
      const { input_ids: ids, attention_mask: mask } = result as ReturnType<CLIPTokenizer['call']>;
      if (ids.length !== c.prompts.length) return `${ids.length} rows for ${c.prompts.length} prompts`;
      for (const [row, rowIds] of ids.entries()) {
        if (rowIds.length !== 77 || mask[row].length !== 77) return `row ${row} has ${rowIds.length} ids`;
        if (rowIds[0] !== tokenizer.bosTokenId) return `row ${row} starts with ${rowIds[0]}`;
        if (!rowIds.every((id) => Number.isInteger(id) && id >= 0 && id < vocabSize)) return `row ${row} has an id outside the vocabulary`;
        const length = mask[row].filter((m) => m === 1).length;
        if (rowIds[length - 1] !== tokenizer.eosTokenId) return `row ${row} does not end its ${length} tokens with EOS`;
      }
      return undefined;
    },
    describe: (c) => JSON.stringify(c.prompts),
    timeBoundMs: 2000,
  };
}
