/**
 * Reads a Hugging Face CLIP tokenizer folder: `vocab.json` + `merges.txt` (what `CLIPTokenizer` loads)
 * or, failing those, `tokenizer.json` (what `CLIPTokenizerFast` loads), plus the special tokens of
 * `tokenizer_config.json` and `special_tokens_map.json`.
 */
import { readTextFileIfExists } from '../../platform/text_file.js';

/** Where tokenizer files come from: a local folder under Node, `fetch` or user-picked files in a browser. */
export interface TokenizerFolder {
  /** Shown in error messages. */
  readonly name: string;
  /** The text of one file of the folder, or undefined when the folder has no such file. */
  readText(file: string): Promise<string | undefined>;
}

export function localTokenizerFolder(dir: string): TokenizerFolder {
  return { name: dir, readText: (file) => readTextFileIfExists(`${dir}/${file}`) };
}

export interface CLIPTokenizerFiles {
  vocab: Map<string, number>;
  /** BPE merges in rank order (best first), each as its two halves. */
  merges: [string, string][];
  /** Tokens matched literally before BPE (the special tokens and any added ones) and their ids. */
  addedTokens: Map<string, number>;
  bosToken: string;
  eosToken: string;
  padToken: string;
  unkToken: string;
  modelMaxLength: number;
}

type SpecialTokenName = 'bos_token' | 'eos_token' | 'pad_token' | 'unk_token';

/** CLIPTokenizer.__init__ defaults; pad is `<|endoftext|>` there too ("hack to enable padding"). */
const DEFAULT_SPECIAL_TOKENS: Record<SpecialTokenName, string> = {
  bos_token: '<|startoftext|>',
  eos_token: '<|endoftext|>',
  pad_token: '<|endoftext|>',
  unk_token: '<|endoftext|>',
};

/** CLIP's text tower has 77 positions; used when tokenizer_config.json does not say. */
const DEFAULT_MODEL_MAX_LENGTH = 77;

interface TokenizerJson {
  model?: { type?: string; vocab?: Record<string, number>; merges?: (string | [string, string])[] };
  added_tokens?: { id: number; content: string }[];
}

interface TokenizerConfigJson extends Partial<Record<SpecialTokenName, SpecialTokenValue>> {
  added_tokens_decoder?: Record<string, { content: string }>;
  model_max_length?: number;
}

/** A special token is stored either as its text or as a serialised AddedToken. */
type SpecialTokenValue = string | { content: string };

export async function readCLIPTokenizerFiles(folder: TokenizerFolder): Promise<CLIPTokenizerFiles> {
  const addedTokens = new Map<string, number>();
  let vocab: Map<string, number>;
  let merges: [string, string][];
  const [vocabText, mergesText] = await Promise.all([folder.readText('vocab.json'), folder.readText('merges.txt')]);
  if (vocabText !== undefined && mergesText !== undefined) {
    vocab = new Map(Object.entries(JSON.parse(vocabText) as Record<string, number>));
    merges = parseMergesTxt(mergesText, folder.name);
  } else {
    const tokenizerText = await folder.readText('tokenizer.json');
    if (tokenizerText === undefined) {
      throw new Error(`${folder.name}: no tokenizer files: expected vocab.json and merges.txt, or tokenizer.json`);
    }
    const tokenizer = JSON.parse(tokenizerText) as TokenizerJson;
    const model = tokenizer.model;
    if (model?.type !== 'BPE' || model.vocab === undefined || model.merges === undefined) {
      throw new Error(`${folder.name}/tokenizer.json: expected a BPE model with vocab and merges`);
    }
    vocab = new Map(Object.entries(model.vocab));
    // tokenizers < 0.20 writes each merge as "left right", newer versions as ["left", "right"].
    merges = model.merges.map((merge, i) =>
      typeof merge === 'string' ? parseMerge(merge, `${folder.name}/tokenizer.json merge ${i}`) : merge,
    );
    for (const token of tokenizer.added_tokens ?? []) addedTokens.set(token.content, token.id);
  }

  const [configText, specialMapText] = await Promise.all([
    folder.readText('tokenizer_config.json'),
    folder.readText('special_tokens_map.json'),
  ]);
  const config = JSON.parse(configText ?? '{}') as TokenizerConfigJson;
  // transformers lets special_tokens_map.json override tokenizer_config.json.
  const specialMap = JSON.parse(specialMapText ?? '{}') as Partial<Record<SpecialTokenName, SpecialTokenValue>>;
  for (const [id, token] of Object.entries(config.added_tokens_decoder ?? {})) {
    addedTokens.set(token.content, Number(id));
  }

  const special = (name: SpecialTokenName): string => {
    const value = specialMap[name] ?? config[name] ?? DEFAULT_SPECIAL_TOKENS[name];
    const content = typeof value === 'string' ? value : value.content;
    if (!addedTokens.has(content)) {
      const id = vocab.get(content);
      if (id === undefined) throw new Error(`${folder.name}: the ${name} '${content}' is not in the vocabulary`);
      addedTokens.set(content, id);
    }
    return content;
  };
  return {
    vocab,
    merges,
    addedTokens,
    bosToken: special('bos_token'),
    eosToken: special('eos_token'),
    padToken: special('pad_token'),
    unkToken: special('unk_token'),
    modelMaxLength: config.model_max_length ?? DEFAULT_MODEL_MAX_LENGTH,
  };
}

/** merges.txt: an optional `#version` line, then one `left right` pair per line in rank order. */
function parseMergesTxt(text: string, folderName: string): [string, string][] {
  const lines = text.split('\n').map((line) => line.trim());
  const first = lines[0]?.startsWith('#version') ? 1 : 0;
  const merges: [string, string][] = [];
  for (let i = first; i < lines.length; i++) {
    if (lines[i] !== '') merges.push(parseMerge(lines[i], `${folderName}/merges.txt line ${i + 1}`));
  }
  return merges;
}

function parseMerge(merge: string, where: string): [string, string] {
  const parts = merge.split(' ');
  if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
    throw new Error(`${where}: expected two symbols separated by one space, got '${merge}'`);
  }
  return [parts[0], parts[1]];
}
