/**
 * Mirrors transformers/models/clip/tokenization_clip.py (`CLIPTokenizer`, as it runs without ftfy) and
 * the `CLIPTokenizerFast` that the released Würstchen repos name in model_index.json. Both share the
 * byte-level BPE; they differ only in how text is cleaned and split before it (see
 * clip_text_normalization.ts), which changes the ids of prompts with CJK ideographs or invisible
 * format characters such as U+200B, U+00AD and U+FEFF.
 */
import { basicTokenizerClean, fastNormalize, pythonStrip, WHITE_SPACE } from './clip_text_normalization.js';
import {
  localTokenizerFolder,
  readCLIPTokenizerFiles,
  type CLIPTokenizerFiles,
  type TokenizerFolder,
} from './tokenizer_files.js';

export interface CLIPTokenizerCallOptions {
  /** Defaults to the folder's `model_max_length` (77 for CLIP). */
  maxLength?: number;
  padding?: 'max_length' | 'longest' | false;
  truncation?: boolean;
}

export interface CLIPTokenizerOutput {
  input_ids: number[][];
  attention_mask: number[][];
  /**
   * Present when truncation dropped tokens from some prompt: per prompt, the text diffusers'
   * `encode_prompt` decodes as removed (pass it to `truncationWarning`).
   */
  truncatedText?: string[];
}

const END_OF_WORD = '</w>';
const PRETOKENIZE_BODY = `'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${WHITE_SPACE}\\p{L}\\p{N}]+`;

/**
 * GPT-2's reversible byte → printable-char table (`bytes_to_unicode`): printable Latin-1 bytes map to
 * themselves, the other 68 to U+0100 onwards, so BPE never sees whitespace or control characters.
 */
function bytesToUnicode(): string[] {
  const table: string[] = new Array(256);
  let next = 256;
  for (let byte = 0; byte < 256; byte++) {
    const printable = (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || byte >= 0xae;
    table[byte] = String.fromCharCode(printable ? byte : next++);
  }
  return table;
}

const BYTE_TO_CHAR = bytesToUnicode();
const CHAR_TO_BYTE = new Map(BYTE_TO_CHAR.map((char, byte) => [char, byte]));
const utf8Encoder = new TextEncoder();

const SLOW_PRETOKENIZE = new RegExp(`<\\|startoftext\\|>|<\\|endoftext\\|>|${PRETOKENIZE_BODY}`, 'giu');
const FAST_PRETOKENIZE = new RegExp(PRETOKENIZE_BODY, 'gu');

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** tokenization_clip.py seeds its BPE cache so these pass through whole when its regex finds them. */
const BPE_SEEDS = new Map([
  ['<|startoftext|>', ['<|startoftext|>']],
  ['<|endoftext|>', ['<|endoftext|>']],
]);

const MAX_CACHED_WORDS = 10_000;

/** A binary min-heap of (merge rank, symbol position), one number each: rank · 2³² + position. */
class PairHeap {
  private readonly keys: number[] = [];

  get size(): number {
    return this.keys.length;
  }

  topRank(): number {
    return Math.floor(this.keys[0] / 2 ** 32);
  }

  push(rank: number, position: number): void {
    const keys = this.keys;
    let i = keys.push(rank * 2 ** 32 + position) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (keys[parent] <= keys[i]) break;
      [keys[parent], keys[i]] = [keys[i], keys[parent]];
      i = parent;
    }
  }

  /** Removes the smallest entry and returns its position. */
  pop(): number {
    const keys = this.keys;
    const top = keys[0];
    const last = keys.pop() as number;
    if (keys.length > 0) {
      keys[0] = last;
      for (let i = 0; ; ) {
        const left = 2 * i + 1;
        const smallest = left + 1 < keys.length && keys[left + 1] < keys[left] ? left + 1 : left;
        if (left >= keys.length || keys[i] <= keys[smallest]) break;
        [keys[i], keys[smallest]] = [keys[smallest], keys[i]];
        i = smallest;
      }
    }
    return top % 2 ** 32;
  }
}

/** `CLIPTokenizer` without ftfy: control characters removed, CJK ideographs split one by one. */
export class CLIPTokenizer {
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  readonly padTokenId: number;
  readonly unkTokenId: number;
  readonly modelMaxLength: number;

  private readonly vocab: Map<string, number>;
  private readonly addedTokens: Map<string, number>;
  private readonly idToToken = new Map<number, string>();
  /** Merge rank by `"left right"` (BPE symbols never contain a space). */
  private readonly bpeRanks = new Map<string, number>();
  /** Added tokens, longest first, as one capturing group so `split` keeps them. */
  private readonly addedTokenSplitter: RegExp;
  /** BPE results of recent words, oldest first; bounded so endless distinct prompts cannot grow it without limit. */
  private readonly bpeCache = new Map<string, string[]>();

  constructor(files: CLIPTokenizerFiles) {
    this.vocab = files.vocab;
    this.addedTokens = files.addedTokens;
    for (const [token, id] of files.vocab) this.idToToken.set(id, token);
    for (const [token, id] of files.addedTokens) this.idToToken.set(id, token);
    files.merges.forEach(([left, right], rank) => this.bpeRanks.set(`${left} ${right}`, rank));
    const added = [...files.addedTokens.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp);
    this.addedTokenSplitter = new RegExp(`(${added.join('|')})`, 'u');
    this.bosTokenId = this.tokenToId(files.bosToken);
    this.eosTokenId = this.tokenToId(files.eosToken);
    this.padTokenId = this.tokenToId(files.padToken);
    this.unkTokenId = this.tokenToId(files.unkToken);
    this.modelMaxLength = files.modelMaxLength;
  }

  /** Loads a tokenizer folder: a local directory, or any `TokenizerFolder` (e.g. one backed by fetch). */
  static async fromPretrained<T extends typeof CLIPTokenizer>(
    this: T,
    source: string | TokenizerFolder,
  ): Promise<InstanceType<T>> {
    const folder = typeof source === 'string' ? localTokenizerFolder(source) : source;
    return new this(await readCLIPTokenizerFiles(folder)) as InstanceType<T>;
  }

  /** BPE token strings of `text`, without BOS/EOS. */
  tokenize(text: string): string[] {
    const tokens: string[] = [];
    this.normalize(text)
      .split(this.addedTokenSplitter)
      .forEach((piece, i) => {
        // split() with a capturing group puts the added tokens at the odd indices.
        if (i % 2 === 1) tokens.push(piece);
        // One token at a time: spreading a huge word's tokens into push() would overflow the call stack.
        else for (const word of this.preTokenize(piece)) for (const token of this.bpe(this.byteEncode(word))) tokens.push(token);
      });
    return tokens;
  }

  /** Ids of `text` with BOS and EOS, neither truncated nor padded. */
  encode(text: string): number[] {
    return [this.bosTokenId, ...this.tokenize(text).map((token) => this.tokenToId(token)), this.eosTokenId];
  }

  /** `tokenizer(prompts, padding=..., max_length=..., truncation=...)`, with diffusers' truncation report. */
  call(prompts: string | string[], options: CLIPTokenizerCallOptions = {}): CLIPTokenizerOutput {
    const { maxLength = this.modelMaxLength, padding = 'max_length', truncation = true } = options;
    const untruncated = (typeof prompts === 'string' ? [prompts] : prompts).map((prompt) => this.encode(prompt));
    // Like transformers: keep the first maxLength - 1 ids and end with EOS, so the sequence stays closed.
    const sequences = untruncated.map((ids) =>
      truncation && ids.length > maxLength ? [...ids.slice(0, maxLength - 1), this.eosTokenId] : ids,
    );
    const padTo =
      padding === 'max_length' ? maxLength : padding === 'longest' ? Math.max(0, ...sequences.map((s) => s.length)) : 0;
    const output: CLIPTokenizerOutput = {
      input_ids: sequences.map((ids) => this.pad(ids, padTo, this.padTokenId)),
      attention_mask: sequences.map((ids) => this.pad(ids.map(() => 1), padTo, 0)),
    };
    const longest = Math.max(0, ...untruncated.map((ids) => ids.length));
    if (truncation && longest > maxLength) {
      // diffusers pads the untruncated batch to its longest prompt and decodes ids[maxLength-1 : -1] of
      // every row, so a short prompt in the batch reports its padding.
      output.truncatedText = untruncated.map((ids) =>
        this.decode(this.pad(ids, longest, this.padTokenId).slice(maxLength - 1, longest - 1)),
      );
    }
    return output;
  }

  /** As `CLIPTokenizerFast.decode(ids)`: special tokens kept, `</w>` read as a space, ends stripped. */
  decode(ids: number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      for (const char of this.idToToken.get(id) ?? '') {
        const byte = CHAR_TO_BYTE.get(char);
        if (byte === undefined) bytes.push(...utf8Encoder.encode(char));
        else bytes.push(byte);
      }
    }
    return pythonStrip(new TextDecoder().decode(new Uint8Array(bytes)).replaceAll(END_OF_WORD, ' '));
  }

  /** What the text goes through before added tokens are split off: nothing, for the slow tokenizer. */
  protected normalize(text: string): string {
    return text;
  }

  /** The words BPE runs on, from one piece of text between added tokens. */
  protected preTokenize(piece: string): string[] {
    return basicTokenizerClean(piece).match(SLOW_PRETOKENIZE) ?? [];
  }

  private tokenToId(token: string): number {
    return this.addedTokens.get(token) ?? this.vocab.get(token) ?? this.unkTokenId;
  }

  private byteEncode(word: string): string {
    let encoded = '';
    for (const byte of utf8Encoder.encode(word)) encoded += BYTE_TO_CHAR[byte];
    return encoded;
  }

  /**
   * `CLIPTokenizer.bpe`: repeatedly merge every occurrence of the best-ranked adjacent pair. Each pass
   * takes that pair's occurrences from a heap of (rank, position) instead of rescanning the word, so
   * a word of n symbols costs O(n log n) rather than O(n²) and a megabyte-long "word" cannot stall.
   * Pairs a pass creates never have the pass's own rank (they contain its merged symbol), so, as in
   * Python, a pass merges exactly the occurrences present when it starts, left to right.
   */
  private bpe(token: string): string[] {
    const seeded = BPE_SEEDS.get(token);
    if (seeded) return seeded;
    const cached = this.bpeCache.get(token);
    if (cached) return cached;
    const symbols = token.split('');
    symbols[symbols.length - 1] += END_OF_WORD;
    const n = symbols.length;
    // A doubly linked list over the symbols; a merged-away symbol becomes ''.
    const next = Int32Array.from({ length: n }, (_, i) => (i + 1 < n ? i + 1 : -1));
    const prev = Int32Array.from({ length: n }, (_, i) => i - 1);
    const rankAt = (i: number): number | undefined =>
      i >= 0 && next[i] >= 0 ? this.bpeRanks.get(`${symbols[i]} ${symbols[next[i]]}`) : undefined;
    const heap = new PairHeap();
    const push = (i: number) => {
      const rank = rankAt(i);
      if (rank !== undefined) heap.push(rank, i);
    };
    for (let i = 0; i + 1 < n; i++) push(i);
    while (heap.size > 0) {
      const rank = heap.topRank();
      const merged: number[] = [];
      // Same-rank entries pop in position order. Stale ones (a neighbour changed since) fail the rank check.
      while (heap.size > 0 && heap.topRank() === rank) {
        const i = heap.pop();
        if (symbols[i] === '' || rankAt(i) !== rank) continue;
        const j = next[i];
        symbols[i] += symbols[j];
        symbols[j] = '';
        next[i] = next[j];
        if (next[j] >= 0) prev[next[j]] = i;
        merged.push(i);
      }
      for (const i of merged) {
        push(prev[i]);
        push(i);
      }
    }
    const word: string[] = [];
    for (let i = 0; i >= 0; i = next[i]) word.push(symbols[i]);
    if (this.bpeCache.size >= MAX_CACHED_WORDS) this.bpeCache.delete(this.bpeCache.keys().next().value as string);
    this.bpeCache.set(token, word);
    return word;
  }

  private pad(ids: number[], length: number, value: number): number[] {
    return ids.length >= length ? ids : [...ids, ...new Array<number>(length - ids.length).fill(value)];
  }
}

/**
 * `CLIPTokenizerFast`: text normalised as a whole (NFC, White_Space runs → " ", per-char lowercase)
 * before special tokens are found; no control-character removal and no CJK splitting.
 */
export class CLIPTokenizerFast extends CLIPTokenizer {
  protected override normalize(text: string): string {
    return fastNormalize(text);
  }

  protected override preTokenize(piece: string): string[] {
    // The Split pre-tokenizer of tokenizer.json: the slow pattern minus the special tokens, case-sensitive.
    return piece.match(FAST_PRETOKENIZE) ?? [];
  }
}

/** The tokenizer classes a diffusers model_index.json may name, e.g. `["transformers", "CLIPTokenizerFast"]`. */
export const tokenizerClasses = { CLIPTokenizer, CLIPTokenizerFast };

/** diffusers' warning for prompts longer than the text tower, with the removed text as Python prints the list. */
export function truncationWarning(truncatedText: string[], maxLength: number): string {
  return (
    'The following part of your input was truncated because CLIP can only handle sequences up to' +
    ` ${maxLength} tokens: [${truncatedText.map(pythonStrRepr).join(', ')}]`
  );
}

/** Python's `repr(str)`: single quotes unless only double quotes avoid escaping, non-printables escaped. */
function pythonStrRepr(text: string): string {
  const quote = text.includes("'") && !text.includes('"') ? '"' : "'";
  const escaped = text.replace(/[\\'"]|[\p{C}\p{Zl}\p{Zp}]|(?! )\p{Zs}/gu, (char) => {
    if (char === '\\' || char === quote) return `\\${char}`;
    if (char === "'" || char === '"') return char;
    const named: Record<string, string> = { '\t': '\\t', '\n': '\\n', '\r': '\\r' };
    if (named[char]) return named[char];
    const code = char.codePointAt(0)!;
    const hex = code.toString(16).padStart(code < 0x100 ? 2 : code < 0x10000 ? 4 : 8, '0');
    return `\\${code < 0x100 ? 'x' : code < 0x10000 ? 'u' : 'U'}${hex}`;
  });
  return quote + escaped + quote;
}
