/**
 * `DO` blocks run their body at once, so the guard reads it: the PL/pgSQL block structure (labels,
 * DECLARE, BEGIN, IF/ELSIF/ELSE, CASE, LOOP/WHILE/FOR/FOREACH, EXCEPTION, END) is peeled off each
 * `;`-separated statement, SQL commands get the statement rules, every expression the call rules, and
 * `EXECUTE` of a constant string is checked as SQL. What cannot be read (EXECUTE of a computed string, a
 * body in another language) is reported as `undecidable`.
 */
import { type Token, tokenize } from '../sql/lexer'
import { stringValue } from '../sql/strings'
import { callFindings, type Found, finding, isPunct, isWord } from './calls'
import { type Hit, statementRule, storesCode } from './statements'

/** Checks SQL text (for EXECUTE '…' and nested DO); findings have offsets into that text. */
export type CheckText = (sql: string) => Found[]

/** Splits tokens on `;` outside parentheses. */
function pieces(t: Token[]): Token[][] {
  const out: Token[][] = [[]]
  let depth = 0
  for (const tok of t) {
    if (isPunct(tok, '(')) depth++
    else if (isPunct(tok, ')')) depth--
    if (tok.kind === 'semicolon' && depth <= 0) out.push([])
    else out[out.length - 1]!.push(tok)
  }
  return out.filter((p) => p.length)
}

/** Index of the first word `w` at parenthesis depth 0 in `t` from `from`, or -1. */
function wordAt(t: Token[], from: number, ...w: string[]): number {
  let depth = 0
  for (let k = from; k < t.length; k++) {
    if (isPunct(t[k], '(')) depth++
    else if (isPunct(t[k], ')')) depth--
    else if (depth === 0 && isWord(t[k], ...w)) return k
  }
  return -1
}

/** Reads a DO block's body (its statement tokens `t`); pushes findings for what it does. */
export function checkDo(t: Token[], excerpt: string, base: number, check: CheckText, out: Found[]): void {
  let lang = 'plpgsql'
  let body: string | undefined
  let bodyAt = -1
  for (let k = 1; k < t.length; k++) {
    if (isWord(t[k], 'language') && t[k + 1]) {
      const l = t[++k]!
      lang = l.kind === 'string' ? (stringValue(t, k) ?? '?') : l.value
    } else if (body === undefined) {
      body = stringValue(t, k)
      bodyAt = t[k]!.kind === 'dollar' ? t[k]!.start + t[k]!.value.indexOf('$', 1) + 1 : -1
    }
  }
  if (body === undefined || lang.toLowerCase() !== 'plpgsql') {
    const why = body === undefined ? 'its body cannot be read' : `it is in language ${lang}`
    out.push(finding('undecidable', excerpt, base, `DO runs its body at once, but ${why}`))
    return
  }
  const at = (offset: number): number => (bodyAt < 0 ? base : base + bodyAt - t[0]!.start + offset)
  const found: Found[] = []
  plpgsqlBody(body, check, found)
  // A DO block has no parameters: a `$n` inside it is never one of the query's values.
  for (const { param: _, ...f } of found)
    out.push({ ...f, statement: excerpt, offset: at(f.offset), message: `DO block: ${f.message}` })
}

/** Findings for a PL/pgSQL body; offsets into `body`. */
function plpgsqlBody(body: string, check: CheckText, out: Found[]): void {
  const raw = (tok: Token | undefined): string => (tok ? body.slice(tok.start, tok.end) : '')
  let declaring = false
  for (let p of pieces(tokenize(body))) {
    const calls = (t: Token[]) => callFindings(t, '', out)
    // Peel the block structure off the front of the piece.
    for (let peeled = true; peeled && p.length; ) {
      peeled = true
      const w = p[0]!.kind === 'word' ? p[0]!.value : ''
      let cut = 0
      if (p[0]!.kind === 'op' && p[0]!.value === '<<') cut = 3
      else if (w === 'declare' || w === 'begin' || w === 'exception' || w === 'else' || w === 'loop') {
        if (w === 'declare' || w === 'begin') declaring = w === 'declare'
        cut = 1
      } else if (w === 'end') cut = p.length
      else if (w === 'if' || w === 'elsif' || w === 'elseif' || w === 'when') {
        cut = wordAt(p, 1, 'then') + 1
        calls(p.slice(1, cut > 0 ? cut - 1 : p.length))
      } else if (w === 'case') {
        cut = wordAt(p, 1, 'when')
        calls(p.slice(1, cut > 0 ? cut : p.length))
      } else if (w === 'while' || w === 'for' || w === 'foreach') {
        cut = wordAt(p, 1, 'loop') + 1
        const head = p.slice(1, cut > 0 ? cut - 1 : p.length)
        const ex = wordAt(head, 0, 'execute')
        if (ex >= 0) dynamic(head.slice(ex + 1), body, check, out)
        else calls(head)
      } else peeled = false
      if (cut <= 0 && peeled) cut = p.length
      if (peeled) p = p.slice(cut)
    }
    if (!p.length) continue
    if (declaring) {
      const init = p.findIndex(
        (x) => (x.kind === 'op' && (x.value === ':=' || x.value === '=')) || isWord(x, 'default'),
      )
      const cursor = wordAt(p, 0, 'cursor')
      // A bound cursor's query runs at OPEN or FOR … IN: read as if it ran, even if never opened.
      const query = cursor < 0 ? -1 : wordAt(p, cursor + 1, 'for', 'is')
      if (query > 0) calls(p.slice(query + 1))
      else if (init > 0 && cursor < 0) calls(p.slice(init + 1))
      continue
    }
    const ex = isWord(p[0], 'execute')
      ? 0
      : isWord(p[0], 'return') && isWord(p[1], 'query') && isWord(p[2], 'execute')
        ? 2
        : -1
    const openEx = isWord(p[0], 'open') ? wordAt(p, 1, 'execute') : -1
    if (ex >= 0 || openEx >= 0) {
      dynamic(p.slice((ex >= 0 ? ex : openEx) + 1), body, check, out)
      continue
    }
    if (isWord(p[0], 'do')) {
      checkDo(p, excerptOf(body, p), p[0]!.start, check, out)
      continue
    }
    const hit: Hit = statementRule(p, raw, 'plpgsql')
    if (hit) out.push(finding(hit[0], '', p[0]!.start, hit[1]))
    if (!storesCode(p)) calls(p)
  }
}

const excerptOf = (body: string, p: Token[]): string => body.slice(p[0]!.start, p[p.length - 1]!.end)

/** EXECUTE <expr> [INTO …] [USING …]: a constant string (or `||` of constants) is checked as SQL. */
function dynamic(t: Token[], body: string, check: CheckText, out: Found[]): void {
  const end = wordAt(t, 0, 'into', 'using', 'loop')
  let expr = end < 0 ? t : t.slice(0, end)
  while (expr.length > 2 && isPunct(expr[0], '(') && isPunct(expr[expr.length - 1], ')'))
    expr = expr.slice(1, -1)
  let sql = ''
  for (let k = 0; k < expr.length; k++) {
    const s =
      k % 2 === 0 ? stringValue(expr, k) : expr[k]!.kind === 'op' && expr[k]!.value === '||' ? '' : undefined
    if (s === undefined || (k % 2 === 1 && k === expr.length - 1)) {
      const at = expr[0]?.start ?? 0
      const msg = `EXECUTE of a computed string (${body.slice(at, expr[expr.length - 1]?.end ?? at).slice(0, 40)}) cannot be read`
      out.push(finding('undecidable', '', at, msg))
      return
    }
    sql += s
  }
  const at = expr[0]?.start ?? 0
  for (const { param: _, ...f } of check(sql))
    out.push({ ...f, offset: at, message: `EXECUTE '…': ${f.message}` })
}
