/** The Python literal subset numpy writes in .npy headers (dict, tuple, list, str, int, True/False/None). Never eval'd. */
import { TorchSslError } from '../errors.js';
import { formatError } from './errors.js';

/** A parsed header value: a dict is a Map, a tuple `{ tuple }`, a list an array. */
export type LiteralValue = string | number | boolean | null | LiteralValue[] | { tuple: LiteralValue[] } | Map<string, LiteralValue>;

export class LiteralParser {
  private pos = 0;
  constructor(
    private readonly text: string,
    private readonly name: string,
  ) {}

  parseTop(): LiteralValue {
    const v = this.value();
    this.skipSpace();
    if (this.pos !== this.text.length) throw this.fail('trailing characters after the header dict');
    return v;
  }

  private fail(what: string): TorchSslError {
    return formatError(this.name, `malformed header (${what} at offset ${this.pos}): ${JSON.stringify(this.text.slice(0, 200))}`);
  }

  private skipSpace(): void {
    while (this.pos < this.text.length && /\s/.test(this.text[this.pos]!)) this.pos++;
  }

  private value(): LiteralValue {
    this.skipSpace();
    const c = this.text[this.pos];
    if (c === undefined) throw this.fail('unexpected end');
    if (c === '{') return this.dict();
    if (c === '(') return { tuple: this.sequence('(', ')') };
    if (c === '[') return this.sequence('[', ']');
    if (c === "'" || c === '"') return this.string();
    if (/[-0-9]/.test(c)) return this.integer();
    for (const [word, v] of [
      ['True', true],
      ['False', false],
      ['None', null],
    ] as const) {
      if (this.text.startsWith(word, this.pos)) {
        this.pos += word.length;
        return v;
      }
    }
    throw this.fail(`unexpected ${JSON.stringify(c)}`);
  }

  private dict(): Map<string, LiteralValue> {
    const out = new Map<string, LiteralValue>();
    this.pos++; // {
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === '}') {
        this.pos++;
        return out;
      }
      const key = this.value();
      if (typeof key !== 'string') throw this.fail('non-string dict key');
      this.skipSpace();
      if (this.text[this.pos] !== ':') throw this.fail("expected ':'");
      this.pos++;
      out.set(key, this.value());
      this.skipSpace();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== '}') throw this.fail("expected ',' or '}'");
    }
  }

  private sequence(open: string, close: string): LiteralValue[] {
    const out: LiteralValue[] = [];
    this.pos++; // open
    for (;;) {
      this.skipSpace();
      if (this.text[this.pos] === close) {
        this.pos++;
        return out;
      }
      out.push(this.value());
      this.skipSpace();
      if (this.text[this.pos] === ',') this.pos++;
      else if (this.text[this.pos] !== close) throw this.fail(`expected ',' or '${close}' after ${open}...`);
    }
  }

  private string(): string {
    const quote = this.text[this.pos]!;
    const end = this.text.indexOf(quote, this.pos + 1);
    if (end < 0) throw this.fail('unterminated string');
    const s = this.text.slice(this.pos + 1, end);
    if (s.includes('\\')) throw this.fail('escaped string');
    this.pos = end + 1;
    return s;
  }

  private integer(): number {
    const m = /^-?[0-9]+L?/.exec(this.text.slice(this.pos, this.pos + 32));
    if (m === null) throw this.fail('bad number');
    this.pos += m[0].length;
    // Python 2 longs ("3L") appear in very old files.
    const digits = m[0].endsWith('L') ? m[0].slice(0, -1) : m[0];
    const n = Number(digits);
    if (!Number.isSafeInteger(n)) throw this.fail(`integer ${digits} out of range`);
    return n;
  }
}
