/**
 * `checkSql`: splits SQL into statements and applies the statement rules (`./statements`), the call rules
 * (`./calls`) to the tokens that run now, and reads `DO` bodies (`./plpgsql`).
 */
import { splitStatements, type Token } from '../sql/lexer'
import { callFindings, type Found, finding, parseBool } from './calls'
import type { GuardFinding } from './catalog'
import { checkDo } from './plpgsql'
import { explained, statementRule, storesCode } from './statements'

/** Excerpt of a statement: whitespace collapsed, at most 80 characters. */
function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length <= 80 ? flat : `${flat.slice(0, 79)}…`
}

/**
 * All findings, including the `undecidable` ones that wait for the value of a `$n` placeholder (`param`).
 *
 * @example
 * ```ts
 * analyzeSql("select set_config('a.b', 'c', $1)")[0]?.param // 1
 * ```
 */
export function analyzeSql(text: string): Found[] {
  const out: Found[] = []
  for (const st of splitStatements(text)) {
    const t = st.tokens
    const ex = excerpt(st.text)
    if (t[0]?.value === 'do' && t[0].kind === 'word') {
      checkDo(t, ex, st.offset, analyzeSql, out)
      continue
    }
    const raw = (tok: Token | undefined): string =>
      tok ? st.text.slice(tok.start - st.offset, tok.end - st.offset) : ''
    const hit = statementRule(t, raw, 'sql')
    if (hit) out.push(finding(hit[0], ex, st.offset, hit[1]))
    const from = t[0]?.value === 'explain' && t[0].kind === 'word' ? explained(t) : 0
    if (from >= 0 && !storesCode(t)) callFindings(from ? t.slice(from) : t, ex, out)
  }
  return out
}

/** How a bound value reads as set_config's is_local: session (false or NULL), local (true), or unknown. */
function boundScope(v: unknown): 'session' | 'local' | undefined {
  if (v === null || v === undefined || v === false) return 'session'
  if (v === true) return 'local'
  if (typeof v === 'string' || (typeof v === 'number' && Number.isInteger(v))) {
    const b = parseBool(String(v))
    return b === undefined ? undefined : b ? 'local' : 'session'
  }
  return undefined
}

/**
 * Decides the findings that wait for a placeholder's value, given the bound values (`params[n - 1]` for
 * `$n`): a false or NULL `is_local` is `session-set`, a true one is dropped, anything else stays
 * `undecidable`.
 *
 * @example
 * ```ts
 * resolveParams(analyzeSql("select set_config('a.b', 'c', $1)"), [true]) // []
 * ```
 */
export function resolveParams(found: Found[], params: readonly unknown[]): GuardFinding[] {
  const out: GuardFinding[] = []
  for (const { param, ...f } of found) {
    const scope = param === undefined || params.length < param ? undefined : boundScope(params[param - 1])
    if (scope === 'local') continue
    if (scope === 'session') {
      const msg = `set_config(…, …, $${param}) is bound to a false or NULL is_local: it changes session state`
      out.push({ ...finding('session-set', f.statement, f.offset, msg) })
    } else out.push(f)
  }
  return out
}

/**
 * Checks SQL text (one or more `;`-separated statements) for statements that need a dedicated server
 * session and therefore break behind a transaction-mode pooler. Pure and synchronous; `[]` when safe.
 * `params` are the values bound to `$1`, `$2`, … (when given, a placeholder as set_config's `is_local` is
 * decided from its value; without them it is `undecidable`).
 *
 * @example
 * ```ts
 * checkSql("set local statement_timeout = '2s'") // []
 * checkSql('select pg_advisory_lock(42)')[0]?.rule // 'session-advisory-lock'
 * checkSql("select set_config('app.id', '1', $1)", [false])[0]?.rule // 'session-set'
 * ```
 */
export function checkSql(text: string, params: readonly unknown[] = []): GuardFinding[] {
  return resolveParams(analyzeSql(text), params)
}
