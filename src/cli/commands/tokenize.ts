import { tokenizerClasses, truncationWarning } from '../../models/clip/tokenization_clip.js';
import { writeFileAtomic } from '../../platform/file.js';
import { readTextFile } from '../../platform/text_file.js';
import { CliError, parseArgs, type Command } from '../command.js';

type TokenizerClassName = keyof typeof tokenizerClasses;

/** A JSON array of prompts, or the golden prompts.json layout `{ "cases": [{ "prompt": ... }, ...] }`. */
function parsePrompts(text: string, path: string): string[] {
  const json = JSON.parse(text) as unknown;
  const cases = (json as { cases?: { prompt?: unknown }[] } | null)?.cases;
  const list = Array.isArray(json) ? json : cases?.map((c) => c.prompt);
  if (!Array.isArray(list) || !list.every((prompt) => typeof prompt === 'string')) {
    throw new CliError(`${path}: expected a JSON array of strings, or an object with "cases": [{ "prompt": "..." }]`);
  }
  return list;
}

export const tokenize: Command = {
  name: 'tokenize',
  summary: 'CLIP token ids and attention masks of prompts, padded and truncated as the pipelines do',
  usage:
    'tokenize --tokenizer <dir> --prompts <prompts.json> --out <ids.json>\n' +
    '         [--class CLIPTokenizerFast|CLIPTokenizer]\n\n' +
    '  --class  the tokenizer class; the released Würstchen repos name CLIPTokenizerFast (the default)\n' +
    '  output:  a JSON array of { "input_ids": [...], "attention_mask": [...] }, one per prompt',
  async run(argv) {
    const { positional, values } = parseArgs(argv, { values: ['tokenizer', 'prompts', 'out', 'class'] });
    if (positional.length > 0) throw new CliError(`unexpected argument '${positional[0]}'`);
    const required = (name: string): string => {
      const value = values.get(name);
      if (value === undefined) throw new CliError(`missing --${name}`);
      return value;
    };
    const [tokenizerDir, promptsPath, outPath] = [required('tokenizer'), required('prompts'), required('out')];
    const className = values.get('class') ?? 'CLIPTokenizerFast';
    if (!Object.hasOwn(tokenizerClasses, className)) {
      throw new CliError(`--class must be one of ${Object.keys(tokenizerClasses).join(', ')}, got '${className}'`);
    }

    const prompts = parsePrompts(await readTextFile(promptsPath), promptsPath);
    const tokenizer = await tokenizerClasses[className as TokenizerClassName].fromPretrained(tokenizerDir);
    // One call per prompt, as a pipeline sees a single prompt: a batch would also report the padding of
    // every shorter prompt in the truncation warning.
    const rows = prompts.map((prompt, i) => {
      const { input_ids, attention_mask, truncatedText } = tokenizer.call(prompt);
      if (truncatedText) console.warn(`prompt ${i}: ${truncationWarning(truncatedText, tokenizer.modelMaxLength)}`);
      return JSON.stringify({ input_ids: input_ids[0], attention_mask: attention_mask[0] });
    });
    await writeFileAtomic(outPath, [new TextEncoder().encode(`[\n${rows.join(',\n')}\n]\n`)]);
    console.log(`${outPath}: ${rows.length} prompts, ${className}`);
    return 0;
  },
};
