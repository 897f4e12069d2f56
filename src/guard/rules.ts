import { type Statement, splitStatements, type Token } from '../sql/lexer'
import { GUARD_RULES, type GuardFinding, type GuardRule } from './catalog'

const ADVISORY = new Set([
  'pg_advisory_lock',
  'pg_advisory_lock_shared',
  'pg_try_advisory_lock',
  'pg_try_advisory_lock_shared',
  'pg_advisory_unlock',
  'pg_advisory_unlock_shared',
  'pg_advisory_unlock_all',
])
const LEAK = 'behind a transaction-mode pooler it leaks to other clients or is lost'

const isWord = (t: Token | undefined, ...values: string[]): boolean =>
  t?.kind === 'word' && values.includes(t.value)
const isPunct = (t: Token | undefined, value: string): boolean => t?.kind === 'punct' && t.value === value

/** Excerpt of a statement: whitespace collapsed, at most 80 characters. */
function excerpt(text: string): string {
  const flat = text.replace(/\s+/g, ' ').trim()
  return flat.length <= 80 ? flat : `${flat.slice(0, 79)}…`
}

/** Indexes of tokens at parenthesis depth 0 from `from` on. */
function* topLevel(t: Token[], from: number): Generator<number> {
  let depth = 0
  for (let k = from; k < t.length; k++) {
    const tok = t[k]
    if (isPunct(tok, '(')) depth++
    else if (isPunct(tok, ')')) depth--
    else if (depth === 0) yield k
  }
}

type Hit = [GuardRule, string] | undefined

function checkSet(t: Token[], raw: (tok: Token | undefined) => string): Hit {
  const a = t[1]
  if (!a || isWord(a, 'local', 'transaction', 'constraints')) return undefined
  const b = t[2]
  const session = isWord(b, 'authorization', 'characteristics') ? raw(b).toUpperCase() : raw(b)
  const what = isWord(a, 'session') ? `SET SESSION ${session}` : `SET ${raw(a)}`
  return ['session-set', `${what} changes session state; ${LEAK}`]
}

function checkCreate(t: Token[]): Hit {
  let k = isWord(t[1], 'or') && isWord(t[2], 'replace') ? 3 : 1
  if (isWord(t[k], 'global', 'local')) k++
  let temp = isWord(t[k], 'temp', 'temporary')
  if (temp || isWord(t[k], 'unlogged')) k++
  if (isWord(t[k], 'recursive')) k++
  const kind = t[k]?.value ?? ''
  if (!isWord(t[k++], 'table', 'view', 'sequence')) return undefined
  if (isWord(t[k], 'if') && isWord(t[k + 1], 'not') && isWord(t[k + 2], 'exists')) k += 3
  temp ||= t[k]?.value === 'pg_temp' && isPunct(t[k + 1], '.')
  if (!temp) return undefined
  if (kind === 'table') {
    for (const i of topLevel(t, k)) {
      if (isWord(t[i], 'as')) break
      if (isWord(t[i], 'on') && isWord(t[i + 1], 'commit') && isWord(t[i + 2], 'drop')) return undefined
    }
  }
  const what = `CREATE TEMP ${kind.toUpperCase()}${kind === 'table' ? ' without ON COMMIT DROP' : ''}`
  return ['session-temp-table', `${what} outlives the transaction; ${LEAK}`]
}

function checkSelectInto(t: Token[]): Hit {
  let seenSelect = false
  for (const i of topLevel(t, 0)) {
    seenSelect ||= isWord(t[i], 'select')
    if (!seenSelect || !isWord(t[i], 'into')) continue
    const k = isWord(t[i + 1], 'global', 'local') ? i + 2 : i + 1
    if (isWord(t[k], 'temp', 'temporary') || (t[k]?.value === 'pg_temp' && isPunct(t[k + 1], '.'))) {
      return ['session-temp-table', `SELECT … INTO TEMP creates a session-level temporary table; ${LEAK}`]
    }
  }
  return undefined
}

function checkDeclare(t: Token[]): Hit {
  for (let k = 2; k < t.length; k++) {
    if (!isWord(t[k], 'cursor')) continue
    if (!isWord(t[k + 1], 'with') || !isWord(t[k + 2], 'hold')) return undefined
    const msg = 'DECLARE … WITH HOLD keeps a cursor open after COMMIT on one server connection'
    return ['with-hold-cursor', `${msg}; behind a transaction-mode pooler later FETCHes run on another`]
  }
  return undefined
}

function statementRule(st: Statement): Hit {
  const t = st.tokens
  const raw = (tok: Token | undefined): string =>
    tok ? st.text.slice(tok.start - st.offset, tok.end - st.offset) : ''
  const first = t[0]?.kind === 'word' ? t[0].value : ''
  const verb = first.toUpperCase()
  switch (first) {
    case 'set':
      return checkSet(t, raw)
    case 'reset':
      return ['session-set', `RESET ${raw(t[1])} changes session state; ${LEAK}`]
    case 'listen':
    case 'unlisten':
      return [
        'listen',
        `${verb} changes the session's listener set; notifications reach whichever client holds it`,
      ]
    case 'prepare':
      if (isWord(t[1], 'transaction')) {
        return [
          'sql-prepare',
          'PREPARE TRANSACTION starts two-phase commit, which transaction-mode poolers cannot pin',
        ]
      }
      return ['sql-prepare', `PREPARE creates a session-level prepared statement; ${LEAK}`]
    case 'execute':
    case 'deallocate':
      return [
        'sql-prepare',
        `${verb} uses a session-level prepared statement the next server connection lacks`,
      ]
    case 'declare':
      return checkDeclare(t)
    case 'create':
      return checkCreate(t)
    case 'select':
    case 'with':
      return checkSelectInto(t)
    case 'load':
      return ['load', 'LOAD loads a library into one server session only; other pooled connections lack it']
    default:
      return undefined
  }
}

/** Keywords after which a name followed by `(` is a function call (not a table, type or alias). */
const BEFORE_CALL = new Set(
  'select where and or not when then else case from join lateral on having returning by distinct all like ilike escape between default call using limit offset'.split(
    ' ',
  ),
)

/** Can a function call follow token `prev` (undefined: statement start)? Not after `::` (a type). */
function callPosition(prev: Token | undefined): boolean {
  if (!prev) return true
  if (prev.kind === 'op') return prev.value !== '::'
  if (prev.kind === 'punct') return prev.value === '(' || prev.value === ',' || prev.value === '['
  return prev.kind === 'word' && BEFORE_CALL.has(prev.value)
}

/** Findings for session-level function calls anywhere in a statement. */
function callFindings(st: Statement, out: GuardFinding[]): void {
  const t = st.tokens
  for (let k = 0; k < t.length; k++) {
    const tok = t[k]!
    if ((tok.kind !== 'word' && tok.kind !== 'ident') || !isPunct(t[k + 1], '(')) continue
    const name = tok.value
    if (!ADVISORY.has(name) && name !== 'set_config') continue
    const qualified = isPunct(t[k - 1], '.')
    if (qualified && (t[k - 2]?.value !== 'pg_catalog' || isPunct(t[k - 3], '.'))) continue
    if (!callPosition(t[qualified ? k - 3 : k - 1])) continue
    const offset = qualified ? t[k - 2]!.start : tok.start
    if (name === 'set_config') {
      if (!thirdArgIsFalse(t, k + 2)) continue
      const message = `set_config(…, …, false) changes session state; ${LEAK}`
      out.push({
        rule: 'session-set',
        statement: excerpt(st.text),
        offset,
        message,
        fix: GUARD_RULES['session-set'].fix,
      })
    } else {
      const message = `${name} takes or releases a session-level lock; ${LEAK}`
      const fix = GUARD_RULES['session-advisory-lock'].fix
      out.push({ rule: 'session-advisory-lock', statement: excerpt(st.text), offset, message, fix })
    }
  }
}

/** Is the third argument of the call whose arguments start at `from` the literal `false`? */
function thirdArgIsFalse(t: Token[], from: number): boolean {
  const args: Token[][] = [[]]
  let depth = 0
  for (let k = from; k < t.length; k++) {
    const tok = t[k]!
    if (isPunct(tok, ')') && depth === 0) break
    if (isPunct(tok, '(') || isPunct(tok, '[')) depth++
    if (isPunct(tok, ')') || isPunct(tok, ']')) depth--
    if (isPunct(tok, ',') && depth === 0) args.push([])
    else args[args.length - 1]!.push(tok)
  }
  let third = args[2] ?? []
  while (third.length > 2 && isPunct(third[0], '(') && isPunct(third[third.length - 1], ')'))
    third = third.slice(1, -1)
  return third.length === 1 && isWord(third[0], 'false')
}

/**
 * Checks SQL text (one or more `;`-separated statements) for statements that need a dedicated server
 * session and therefore break behind a transaction-mode pooler. Pure and synchronous; `[]` when safe.
 *
 * @example
 * ```ts
 * checkSql("set local statement_timeout = '2s'") // []
 * checkSql('select pg_advisory_lock(42)')[0]?.rule // 'session-advisory-lock'
 * ```
 */
export function checkSql(text: string): GuardFinding[] {
  const out: GuardFinding[] = []
  for (const st of splitStatements(text)) {
    const hit = statementRule(st)
    if (hit) {
      const [rule, message] = hit
      out.push({ rule, statement: excerpt(st.text), offset: st.offset, message, fix: GUARD_RULES[rule].fix })
    }
    callFindings(st, out)
  }
  return out
}
