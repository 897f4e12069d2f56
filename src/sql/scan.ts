/**
 * Character classes and scanning helpers for the guard lexer (internal). Every helper takes the
 * source and an index and returns the end index (exclusive) of the construct, never throwing.
 */

/** Character class bits returned by {@link charClass}. @example charClass(32) & CC.SPACE // 1 */
export const CC = { SPACE: 1, ID_START: 2, ID_CONT: 4, DIGIT: 8, OP: 16, PUNCT: 32 } as const

const CLS = new Uint8Array(128)
for (const ch of ' \t\n\r\f\v') CLS[ch.charCodeAt(0)] = CC.SPACE
for (let c = 0; c < 128; c++) {
  if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95) CLS[c] = CC.ID_START | CC.ID_CONT
  if (c >= 48 && c <= 57) CLS[c] = CC.ID_CONT | CC.DIGIT
}
CLS[36] = CC.ID_CONT // `$` continues an identifier (a$b) but never starts one
for (const ch of '~!@#^&|`?+-*/%<>=') CLS[ch.charCodeAt(0)] = CC.OP
for (const ch of ',()[]') CLS[ch.charCodeAt(0)] = CC.PUNCT

/** Class bits of a UTF-16 code unit; non-ASCII counts as an identifier letter. @example charClass(97) // 6 */
export const charClass = (c: number): number => (c < 128 ? (CLS[c] ?? 0) : CC.ID_START | CC.ID_CONT)
/** Can `c` start an identifier? @example isIdStart(0x61) // true */
export const isIdStart = (c: number): boolean => (charClass(c) & CC.ID_START) !== 0
/** Can `c` continue an identifier (letters, digits, `_`, `$`)? @example isIdCont(0x24) // true */
export const isIdCont = (c: number): boolean => (charClass(c) & CC.ID_CONT) !== 0
/** Is `c` an ASCII digit? @example isDigit(0x31) // true */
export const isDigit = (c: number): boolean => c >= 48 && c <= 57
/** Operator characters after which a trailing `+`/`-` may end a multi-char operator. */
const isOpSpecial = (c: number): boolean =>
  c !== 43 && c !== 45 && c !== 42 && c !== 47 && c !== 60 && c !== 62 && c !== 61

/** End (exclusive) of a quoted run starting after the opening quote; doubled quotes are escapes.
 * @example scanQuoted("'it''s' x", 1, 39, false) // 7
 */
export function scanQuoted(sql: string, i: number, quote: number, backslash: boolean): number {
  const n = sql.length
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (backslash && c === 92) i += 2
    else if (c === quote) {
      if (sql.charCodeAt(i + 1) !== quote) return i + 1
      i += 2
    } else i++
  }
  return n
}

/** End (exclusive) of a `/* … *\/` comment starting after the opening `/*`; comments nest.
 * @example scanBlockComment(sql, 2) // end of the comment that opens at 0
 */
export function scanBlockComment(sql: string, i: number): number {
  const n = sql.length
  let depth = 1
  while (i < n) {
    const c = sql.charCodeAt(i)
    if (c === 42 && sql.charCodeAt(i + 1) === 47) {
      i += 2
      if (--depth === 0) return i
    } else if (c === 47 && sql.charCodeAt(i + 1) === 42) {
      i += 2
      depth++
    } else i++
  }
  return n
}

/** End (exclusive) of a run of operator characters, using PostgreSQL's operator rules.
 * @example scanOperator('+-1', 0) // 1
 */
export function scanOperator(sql: string, i: number): number {
  const start = i
  const n = sql.length
  while (i < n) {
    const c = sql.charCodeAt(i)
    if ((charClass(c) & CC.OP) === 0) break
    const d = sql.charCodeAt(i + 1)
    if (i > start && ((c === 45 && d === 45) || (c === 47 && d === 42))) break
    i++
  }
  let end = i
  const last = sql.charCodeAt(end - 1)
  if (end - start > 1 && (last === 43 || last === 45)) {
    let special = false
    for (let k = start; k < end - 1; k++) if (isOpSpecial(sql.charCodeAt(k))) special = true
    if (!special) {
      do end--
      while (end - start > 1 && (sql.charCodeAt(end - 1) === 43 || sql.charCodeAt(end - 1) === 45))
    }
  }
  return end
}

/** End (exclusive) of a numeric literal: integers (with `_`), decimals, exponents, 0x/0o/0b.
 * @example scanNumber('1.5e3 x', 0) // 5
 */
export function scanNumber(sql: string, i: number): number {
  const c1 = sql.charCodeAt(i + 1) | 32
  if (sql.charCodeAt(i) === 48 && (c1 === 120 || c1 === 111 || c1 === 98)) {
    let j = i + 2
    while (j < sql.length && isIdCont(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 36) j++
    if (j > i + 2) return j
  }
  const digits = (j: number): number => {
    while (isDigit(sql.charCodeAt(j)) || (sql.charCodeAt(j) === 95 && isDigit(sql.charCodeAt(j + 1)))) j++
    return j
  }
  let j = digits(i)
  if (sql.charCodeAt(j) === 46 && sql.charCodeAt(j + 1) !== 46) j = digits(j + 1)
  if ((sql.charCodeAt(j) | 32) === 101) {
    let k = j + 1
    const s = sql.charCodeAt(k)
    if (s === 43 || s === 45) k++
    if (isDigit(sql.charCodeAt(k))) j = digits(k)
  }
  return j
}

/** Unquotes the body of a `"…"` identifier (`""` → `"`). @example unquoteIdent('"a""b"', 1, 6) // 'a"b' */
export function unquoteIdent(sql: string, from: number, end: number): string {
  const closed = end - 1 >= from && sql.charCodeAt(end - 1) === 34
  const inner = sql.slice(from, closed ? end - 1 : end)
  return inner.includes('"') ? inner.replaceAll('""', '"') : inner
}
