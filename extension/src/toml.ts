/**
 * A tiny line-based TOML tokenizer: just enough to colour a config (tables, keys, strings,
 * numbers and dates, booleans, comments, punctuation). Text it does not recognise gets no token.
 */

export type TokenKind = 'table' | 'key' | 'string' | 'number' | 'bool' | 'comment' | 'punct';

export interface IToken {
  /** Offsets inside the line. */
  from: number;
  to: number;
  kind: TokenKind;
}

/** The closing delimiter of a multi-line string still open at the end of a line, else null. */
export type TomlState = '"""' | "'''" | null;

const TABLE = /^\s*(\[\[?[^\]#]*\]\]?)/;
const KEY = /[A-Za-z0-9_-]+(?:\s*\.\s*[A-Za-z0-9_-]+)*(?=\s*=)/y;
const BASIC_STRING = /"(?:[^"\\]|\\.)*"?/y;
const LITERAL_STRING = /'[^']*'?/y;
const BOOL = /(?:true|false)(?![\w-])/y;
const NUMBER =
  /(?:\d{4}-\d{2}-\d{2}(?:[Tt ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?|\d{2}:\d{2}:\d{2}(?:\.\d+)?|[+-]?(?:0x[0-9A-Fa-f_]+|0o[0-7_]+|0b[01_]+|inf|nan|\d[\d_]*(?:\.[\d_]+)?(?:[eE][+-]?\d[\d_]*)?))(?![\w.-])/y;
const PUNCT = /[=[\]{},.]/y;
const WORD = /[^\s#"'=[\]{},]+/y;
const IS_ASSIGNMENT = /^\s*=(?!=)/;

function matchAt(re: RegExp, text: string, pos: number): number {
  re.lastIndex = pos;
  return re.test(text) ? re.lastIndex : -1;
}

/** Tokenize one line, given the state left by the previous line. */
export function tokenizeLine(
  text: string,
  state: TomlState = null
): { tokens: IToken[]; state: TomlState } {
  const tokens: IToken[] = [];
  let pos = 0;

  if (state !== null) {
    const close = text.indexOf(state);
    if (close < 0) {
      if (text.length > 0) {
        tokens.push({ from: 0, to: text.length, kind: 'string' });
      }
      return { tokens, state };
    }
    pos = close + 3;
    tokens.push({ from: 0, to: pos, kind: 'string' });
    state = null;
  } else {
    const table = TABLE.exec(text);
    if (table) {
      pos = table[0].length;
      tokens.push({ from: pos - table[1].length, to: pos, kind: 'table' });
    }
  }

  while (pos < text.length) {
    const ch = text[pos];
    let end: number;
    if (/\s/.test(ch)) {
      pos++;
      continue;
    }
    if (ch === '#') {
      tokens.push({ from: pos, to: text.length, kind: 'comment' });
      break;
    }
    const triple = text.slice(pos, pos + 3);
    if (triple === '"""' || triple === "'''") {
      const close = text.indexOf(triple, pos + 3);
      end = close < 0 ? text.length : close + 3;
      state = close < 0 ? triple : null;
      tokens.push({ from: pos, to: end, kind: 'string' });
      pos = end;
      continue;
    }
    if (ch === '"' || ch === "'") {
      end = matchAt(ch === '"' ? BASIC_STRING : LITERAL_STRING, text, pos);
      const kind = IS_ASSIGNMENT.test(text.slice(end)) ? 'key' : 'string';
      tokens.push({ from: pos, to: end, kind });
      pos = end;
      continue;
    }
    const rules: [RegExp, TokenKind | null][] = [
      [KEY, 'key'],
      [BOOL, 'bool'],
      [NUMBER, 'number'],
      [PUNCT, 'punct'],
      [WORD, null]
    ];
    end = -1;
    for (const [re, kind] of rules) {
      end = matchAt(re, text, pos);
      if (end > pos) {
        if (kind !== null) {
          tokens.push({ from: pos, to: end, kind });
        }
        break;
      }
    }
    pos = end > pos ? end : pos + 1;
  }
  return { tokens, state };
}
