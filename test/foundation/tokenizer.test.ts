import { describe, expect, it } from 'vitest';
import { PAD, Tokenizer, UNK, splitWords } from '../../src/data/tokenizer.js';

describe('tokenizer', () => {
  it('splits lower-case words and drops punctuation', () => {
    expect(splitWords('A photo of a T-shirt, close-up.')).toEqual(['a', 'photo', 'of', 'a', 't-shirt', 'close-up']);
  });

  it('orders the vocabulary by frequency, then alphabetically, after <pad> and <unk>', () => {
    const t = Tokenizer.build(['b a', 'a c', 'a b'], { maxTokens: 4 });
    expect(t.vocab).toEqual(['<pad>', '<unk>', 'a', 'b', 'c']);
  });

  it('pads, truncates and maps unknown words to <unk>', () => {
    const t = Tokenizer.build(['red circle'], { maxTokens: 3 });
    const ids = t.encode(['red circle', 'blue circle red square']);
    expect(Array.from(ids)).toEqual([t.vocab.indexOf('red'), t.vocab.indexOf('circle'), PAD, UNK, t.vocab.indexOf('circle'), t.vocab.indexOf('red')]);
  });

  it('always includes words it is told to (prompts and class names)', () => {
    const t = Tokenizer.build(['a b'], { maxTokens: 4, minCount: 2, always: ['zebra'] });
    expect(t.vocab).toContain('zebra');
    expect(t.vocab).not.toContain('a');
  });

  it('handles a vocabulary of more than 10k words and round-trips through JSON', () => {
    const texts = Array.from({ length: 12000 }, (_, i) => `word${i} common`);
    const t = Tokenizer.build(texts, { maxTokens: 4 });
    expect(t.size).toBe(12000 + 1 + 2);
    const back = Tokenizer.fromJSON(JSON.parse(JSON.stringify(t.toJSON())));
    expect(Array.from(back.encode(['word11999 common']))).toEqual(Array.from(t.encode(['word11999 common'])));
    expect(back.decode(back.encode(['word11999 common']))).toBe('word11999 common');
  });
});
