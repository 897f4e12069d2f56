/**
 * A small, allocation-light SQL lexer that follows PostgreSQL's scanner rules closely enough to find
 * statement boundaries, keywords and `$n` placeholders without ever looking inside literals, quoted
 * identifiers, comments or dollar-quoted bodies. It never throws: an unterminated literal or comment
 * simply runs to the end of the input.
 */

import {
  CC,
  charClass,
  isDigit,
  isIdCont,
  isIdStart,
  scanBlockComment,
  scanNumber,
  scanOperator,
  scanQuoted,
  unquoteIdent,
} from './scan'

/** Kind of a lexical token. @example const kind: TokenKind = 'word' */
export type TokenKind =
  | 'word'
  | 'ident'
  | 'string'
  | 'dollar'
  | 'number'
  | 'param'
  | 'op'
  | 'punct'
  | 'semicolon'

/**
 * One token of SQL source.
 *
 * `value` is the lower-cased text for `word`, the unquoted name for `ident`, the digits for `param`
 * and the raw source slice for every other kind. `start`/`end` are UTF-16 offsets into the input.
 *
 * @example
 * ```ts
 * const [tok] = tokenize('SELECT')
 * // tok = { kind: 'word', start: 0, end: 6, value: 'select' }
 * ```
 */
export interface Token {
  kind: TokenKind
  start: number
  end: number
  value: string
}

/**
 * One statement of a multi-statement string: its source text (first to last token, so leading
 * comments and whitespace are excluded), the offset of that text in the input, and its tokens.
 *
 * @example
 * ```ts
 * const [, second] = splitStatements('select 1; set x = 1')
 * // second.text === 'set x = 1', second.offset === 10
 * ```
 */
export interface Statement {
  text: string
  offset: number
  tokens: Token[]
}

/**
 * Splits SQL into tokens, skipping whitespace and comments. `$1` style placeholders are only ever
 * produced as `param` tokens in plain SQL context, never inside literals, comments or dollar quotes.
 *
 * @example
 * ```ts
 * tokenize("select $1, 'it''s' -- note").map((t) => t.kind)
 * // ['word', 'param', 'punct', 'string']
 * ```
 */
export function tokenize(sql: string): Token[] {
  const out: Token[] = []
  const n = sql.length
  let i = 0
  const push = (kind: TokenKind, start: number, end: number, value: string): void => {
    out.push({ kind, start, end, value })
    i = end
  }
  while (i < n) {
    const c = sql.charCodeAt(i)
    const cls = charClass(c)
    const next = sql.charCodeAt(i + 1)
    if (cls & CC.SPACE) i++
    else if (c === 45 && next === 45) {
      let j = i + 2
      while (j < n && sql.charCodeAt(j) !== 10 && sql.charCodeAt(j) !== 13) j++
      i = j
    } else if (c === 47 && next === 42) i = scanBlockComment(sql, i + 2)
    else if (c === 39) {
      const end = scanQuoted(sql, i + 1, 39, false)
      push('string', i, end, sql.slice(i, end))
    } else if (c === 34) {
      const end = scanQuoted(sql, i + 1, 34, false)
      push('ident', i, end, unquoteIdent(sql, i + 1, end))
    } else if (cls & CC.ID_START) {
      const lower = c | 32
      if (next === 39 && (lower === 101 || lower === 98 || lower === 120)) {
        const end = scanQuoted(sql, i + 2, 39, lower === 101)
        push('string', i, end, sql.slice(i, end))
        continue
      }
      const third = sql.charCodeAt(i + 2)
      if (lower === 117 && next === 38 && (third === 39 || third === 34)) {
        const end = scanQuoted(sql, i + 3, third, false)
        if (third === 39) push('string', i, end, sql.slice(i, end))
        else push('ident', i, end, unquoteIdent(sql, i + 3, end))
        continue
      }
      let j = i + 1
      let upper = c >= 65 && c <= 90
      for (let d = next; j < n && isIdCont(d); d = sql.charCodeAt(++j))
        upper ||= (d >= 65 && d <= 90) || d >= 128
      const word = sql.slice(i, j)
      push('word', i, j, upper ? word.toLowerCase() : word)
    } else if (c === 36) {
      if (isDigit(next)) {
        let j = i + 2
        while (isDigit(sql.charCodeAt(j))) j++
        push('param', i, j, sql.slice(i + 1, j))
        continue
      }
      let j = i + 1
      if (isIdStart(next)) while (j < n && isIdCont(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++
      if (sql.charCodeAt(j) !== 36) {
        push('punct', i, i + 1, '$')
        continue
      }
      const tag = sql.slice(i, j + 1)
      const close = sql.indexOf(tag, j + 1)
      const end = close < 0 ? n : close + tag.length
      push('dollar', i, end, sql.slice(i, end))
    } else if (cls & CC.DIGIT || (c === 46 && isDigit(next))) {
      const end = scanNumber(sql, i)
      push('number', i, end, sql.slice(i, end))
    } else if (c === 59) push('semicolon', i, i + 1, ';')
    else if (c === 58 && (next === 58 || next === 61)) push('op', i, i + 2, sql.slice(i, i + 2))
    else if (c === 46 && next === 46) push('op', i, i + 2, '..')
    else if (cls & CC.OP) {
      const end = scanOperator(sql, i)
      push('op', i, end, sql.slice(i, end))
    } else push('punct', i, i + 1, sql[i] ?? '')
  }
  return out
}

/**
 * Splits SQL into statements on top-level `;`. Semicolons inside literals, comments, dollar quotes,
 * parentheses and `BEGIN ATOMIC … END` function bodies do not split (the same heuristic as psql).
 * Empty statements are dropped; separating semicolons are not part of any statement's tokens.
 *
 * @example
 * ```ts
 * splitStatements("select ';'; /* ; *\/ select 2;").map((s) => s.text)
 * // ["select ';'", 'select 2']
 * ```
 */
export function splitStatements(sql: string): Statement[] {
  const tokens = tokenize(sql)
  const out: Statement[] = []
  let from = 0
  let parens = 0
  let atomic = 0
  let words = 0
  let routine = false
  const flush = (to: number): void => {
    const first = tokens[from]
    const last = tokens[to - 1]
    if (first && last && to > from) {
      out.push({
        text: sql.slice(first.start, last.end),
        offset: first.start,
        tokens: tokens.slice(from, to),
      })
    }
  }
  for (let k = 0; k < tokens.length; k++) {
    const tok = tokens[k]!
    if (tok.kind === 'semicolon') {
      if (parens > 0 || atomic > 0) continue
      flush(k)
      from = k + 1
      words = 0
      routine = false
    } else if (tok.kind === 'punct') {
      if (tok.value === '(') parens++
      else if (tok.value === ')' && parens > 0) parens--
    } else if (tok.kind === 'word') {
      const v = tok.value
      // CREATE [OR REPLACE] {FUNCTION|PROCEDURE} … BEGIN ATOMIC … END may contain semicolons.
      if ((v === 'function' || v === 'procedure') && tokens[from]?.value === 'create') {
        routine ||= words === 1 || (words === 3 && tokens[from + 1]?.value === 'or')
      }
      words++
      if (routine && parens === 0) {
        if (v === 'begin' && tokens[k + 1]?.value === 'atomic') atomic++
        else if (v === 'case' && atomic > 0) atomic++
        else if (v === 'end' && atomic > 0) atomic--
      }
    }
  }
  flush(tokens.length)
  return out
}
