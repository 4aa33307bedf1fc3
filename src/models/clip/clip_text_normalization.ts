/**
 * The two text clean-ups in front of CLIP's BPE, as transformers runs them:
 * - `CLIPTokenizer` without ftfy: `BasicTokenizer(strip_accents=False, do_split_on_punc=False)` from
 *   transformers/models/clip/tokenization_clip.py (itself copied from tokenization_bert.py);
 * - `CLIPTokenizerFast`: the `tokenizer.json` normalizer `NFC → Replace(\s+, " ") → Lowercase`.
 */

/**
 * Unicode White_Space, which both Oniguruma's `\s` (the fast tokenizer's regex engine) and the golden
 * prompts agree on. JavaScript's `\s` differs: it adds U+FEFF and drops U+0085, and a byte-order mark
 * must stay a token.
 */
export const WHITE_SPACE = '\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';

/** Python's `str.isspace` characters (what `str.split()` and `str.strip()` use): White_Space plus U+001C..U+001F. */
const PYTHON_SPACE = `${WHITE_SPACE}\\x1c-\\x1f`;
const PYTHON_SPACE_RUN = new RegExp(`[${PYTHON_SPACE}]+`, 'u');

/** BasicTokenizer._clean_text drops U+FFFD and every category-C character (NUL included) but \t \n \r. */
const REMOVED_CHARS = /\u{FFFD}|(?![\t\n\r])\p{C}/gu;
/** ... and turns \t \n \r and category Zs into a plain space. */
const SPACE_CHARS = /[\t\n\r\p{Zs}]/gu;
/** BasicTokenizer._is_chinese_char: the CJK Unified Ideographs blocks, not kana or hangul. */
const CJK_IDEOGRAPH = new RegExp(
  '[\\u{4E00}-\\u{9FFF}\\u{3400}-\\u{4DBF}\\u{20000}-\\u{2A6DF}\\u{2A700}-\\u{2B73F}\\u{2B740}-\\u{2B81F}' +
    '\\u{2B820}-\\u{2CEAF}\\u{F900}-\\u{FAFF}\\u{2F800}-\\u{2FA1F}]',
  'gu',
);

/**
 * `" ".join(BasicTokenizer(strip_accents=False, do_split_on_punc=False).tokenize(text))`: the text the
 * slow tokenizer feeds to its BPE regex when ftfy is not installed.
 */
export function basicTokenizerClean(text: string): string {
  const cleaned = text.replace(REMOVED_CHARS, '').replace(SPACE_CHARS, ' ').replace(CJK_IDEOGRAPH, ' $& ');
  return cleaned
    .normalize('NFC')
    .split(PYTHON_SPACE_RUN)
    .filter((word) => word !== '')
    // Lower-cased word by word like Python's str.lower, which applies the final-sigma rule per word.
    .map((word) => word.toLowerCase())
    .join(' ');
}

const WHITE_SPACE_RUN = new RegExp(`[${WHITE_SPACE}]+`, 'gu');

/** The `CLIPTokenizerFast` normalizer of `tokenizer.json`: NFC, each White_Space run → " ", lowercase. */
export function fastNormalize(text: string): string {
  const spaced = text.normalize('NFC').replace(WHITE_SPACE_RUN, ' ');
  // The Rust Lowercase normalizer maps each char on its own (`char::to_lowercase`), so a word-final
  // capital sigma becomes σ, never the contextual ς that String.prototype.toLowerCase would give.
  let lowered = '';
  for (const char of spaced) lowered += char.toLowerCase();
  return lowered;
}

const PYTHON_SPACE_AT_ENDS = new RegExp(`^[${PYTHON_SPACE}]+|[${PYTHON_SPACE}]+$`, 'gu');

/** Python's `str.strip()`: unlike String.prototype.trim it keeps U+FEFF and removes U+001C..U+001F, U+0085. */
export function pythonStrip(text: string): string {
  return text.replace(PYTHON_SPACE_AT_ENDS, '');
}
