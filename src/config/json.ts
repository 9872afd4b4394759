/**
 * Locates the first syntax error in a JSON text. JSON.parse's messages differ across
 * Node versions and often omit the position (Node 20: `Unexpected token ']', ..."x": [1,]"
 * is not valid JSON`), so a config error could not point at a line. This scanner follows
 * RFC 8259 just far enough to find where it breaks, and also stops at a key given twice in
 * one object, which JSON.parse accepts silently (the last one wins: `"workers": 2` above a
 * forgotten `"workers": 8` would be ignored).
 */

/** Where a JSON text stops being valid: 1-based line and column, and what was found there. */
export interface JsonErrorLocation {
  offset: number;
  line: number;
  column: number;
  reason: string;
}

class Stop extends Error {
  constructor(readonly offset: number, readonly reason: string) {
    super(reason);
  }
}

/**
 * Returns where `text` is not valid JSON, or undefined when it is valid.
 *
 * @example
 * locateJsonError('{\n  "a": [1,]\n}'); // { line: 2, column: 11, reason: 'unexpected "]"', … }
 */
export function locateJsonError(text: string): JsonErrorLocation | undefined {
  let i = 0;
  const ws = (): void => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const unexpected = (): never => {
    throw new Stop(i, i >= text.length ? 'unexpected end of file' : `unexpected ${JSON.stringify(text[i])}`);
  };
  const expect = (ch: string): void => {
    if (text[i] !== ch) throw new Stop(i, i >= text.length ? `expected "${ch}" before the end of file` : `expected "${ch}", found ${JSON.stringify(text[i])}`);
    i++;
  };
  const string = (): void => {
    expect('"');
    while (i < text.length && text[i] !== '"') {
      if (text.charCodeAt(i) < 0x20) throw new Stop(i, 'control character in a string (write \\n or \\t)');
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) throw new Stop(i, 'bad \\u escape');
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? 'x')) throw new Stop(i, 'bad escape in a string');
      }
      i++;
    }
    expect('"');
  };
  const value = (): void => {
    ws();
    const ch = text[i];
    if (ch === '{') {
      i++;
      ws();
      if (text[i] === '}') return void i++;
      const keys = new Map<string, number>();
      for (;;) {
        ws();
        if (text[i] !== '"') unexpected();
        const start = i;
        string();
        const key = JSON.parse(text.slice(start, i)) as string;
        const first = keys.get(key);
        if (first !== undefined) {
          throw new Stop(start, `${JSON.stringify(key)} is given twice in this object (first at line ${lineOf(first)}); JSON keeps only the last one: remove one`);
        }
        keys.set(key, start);
        ws();
        expect(':');
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        return expect('}');
      }
    }
    if (ch === '[') {
      i++;
      ws();
      if (text[i] === ']') return void i++;
      for (;;) {
        value();
        ws();
        if (text[i] === ',') { i++; continue; }
        return expect(']');
      }
    }
    if (ch === '"') return string();
    const lit = /^(?:true|false|null|-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!lit) unexpected();
    i += lit![0].length;
  };
  const lineOf = (offset: number): number => text.slice(0, offset).split('\n').length;
  try {
    value();
    ws();
    if (i < text.length) unexpected();
    return undefined;
  } catch (err) {
    if (!(err instanceof Stop)) throw err;
    const before = text.slice(0, err.offset).split('\n');
    return { offset: err.offset, line: before.length, column: before.at(-1)!.length + 1, reason: err.reason };
  }
}
