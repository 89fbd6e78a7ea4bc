/**
 * Word-level tokenizer whose vocabulary is built from the training captions
 * (plus the zero-shot prompts and class names, so evaluation never meets an
 * unknown word by construction). Saved next to the model weights.
 */
export const PAD = 0;
export const UNK = 1;
const SPECIALS = ['<pad>', '<unk>'];

/** Lower-case words and numbers; punctuation separates but is not a token. */
export function splitWords(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+(?:['’-][\p{L}\p{N}]+)*/gu) ?? [];
}

export interface TokenizerJson {
  readonly format: 'clip-backdoor-filter-tokenizer';
  readonly version: 1;
  readonly maxTokens: number;
  readonly vocab: readonly string[];
}

export class Tokenizer {
  private readonly ids: Map<string, number>;

  constructor(
    readonly vocab: readonly string[],
    readonly maxTokens: number,
  ) {
    if (vocab[PAD] !== SPECIALS[PAD] || vocab[UNK] !== SPECIALS[UNK]) throw new Error('vocabulary must start with <pad>, <unk>');
    this.ids = new Map(vocab.map((w, i) => [w, i]));
  }

  /** Words seen at least `minCount` times, most frequent first (ties alphabetical, so the order is deterministic). */
  static build(texts: Iterable<string>, opts: { maxTokens: number; minCount?: number; always?: Iterable<string> }): Tokenizer {
    const counts = new Map<string, number>();
    for (const t of texts) for (const w of splitWords(t)) counts.set(w, (counts.get(w) ?? 0) + 1);
    const minCount = opts.minCount ?? 1;
    const words = [...counts].filter(([, c]) => c >= minCount);
    words.sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const vocab = [...SPECIALS, ...words.map(([w]) => w)];
    const seen = new Set(vocab);
    for (const text of opts.always ?? []) {
      for (const w of splitWords(text)) {
        if (!seen.has(w)) {
          seen.add(w);
          vocab.push(w);
        }
      }
    }
    return new Tokenizer(vocab, opts.maxTokens);
  }

  static fromJSON(json: TokenizerJson): Tokenizer {
    if (json.format !== 'clip-backdoor-filter-tokenizer') throw new Error(`not a tokenizer file (format ${String(json.format)})`);
    return new Tokenizer(json.vocab, json.maxTokens);
  }

  toJSON(): TokenizerJson {
    return { format: 'clip-backdoor-filter-tokenizer', version: 1, maxTokens: this.maxTokens, vocab: this.vocab };
  }

  get size(): number {
    return this.vocab.length;
  }

  /** Token ids of one text, truncated to maxTokens (no padding). */
  encodeOne(text: string): number[] {
    return splitWords(text)
      .slice(0, this.maxTokens)
      .map((w) => this.ids.get(w) ?? UNK);
  }

  /** Row-major [texts.length, maxTokens] ids, padded with PAD. */
  encode(texts: readonly string[]): Int32Array {
    const L = this.maxTokens;
    const out = new Int32Array(texts.length * L);
    texts.forEach((t, r) => out.set(this.encodeOne(t), r * L));
    return out;
  }

  decode(ids: ArrayLike<number>): string {
    const words: string[] = [];
    for (let i = 0; i < ids.length; i++) if (ids[i] !== PAD) words.push(this.vocab[ids[i]] ?? SPECIALS[UNK]);
    return words.join(' ');
  }
}
