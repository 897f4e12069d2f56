/**
 * Statement-level guard rules: what one statement does by its own keywords (SET, LISTEN, PREPARE, DECLARE …
 * WITH HOLD, CREATE TEMP, SELECT INTO TEMP, LOAD), and which of its tokens actually run now (`EXPLAIN`
 * without `ANALYZE` runs nothing; a `CREATE FUNCTION` body is only stored).
 */
import type { Token } from '../sql/lexer'
import { isPunct, isWord, LEAK, parseBool } from './calls'
import type { GuardRule } from './catalog'

/** A statement-level hit: the rule and its one-line message. */
export type Hit = [GuardRule, string] | undefined

/** Where a statement is read: top-level SQL, or a PL/pgSQL body (where EXECUTE, DECLARE and INTO differ). */
export type Dialect = 'sql' | 'plpgsql'

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

function checkSet(t: Token[], raw: (tok: Token | undefined) => string): Hit {
  const a = t[1]
  if (!a || isWord(a, 'local', 'transaction', 'constraints')) return undefined
  const b = t[2]
  const session = isWord(b, 'authorization', 'characteristics') ? raw(b).toUpperCase() : raw(b)
  const what = isWord(a, 'session') ? `SET SESSION ${session}` : `SET ${raw(a)}`
  return ['session-set', `${what} changes session state; ${LEAK}`]
}

/** Is `t[k]` the temp schema as a qualifier: `pg_temp.` (or its real name `pg_temp_N.`)? */
const tempSchemaAt = (t: Token[], k: number): boolean =>
  (t[k]?.kind === 'word' || t[k]?.kind === 'ident') &&
  /^pg_temp(_\d+)?$/.test(t[k]!.value) &&
  isPunct(t[k + 1], '.')

/** Object kinds whose name follows `CREATE [OR REPLACE] <kind words>` and may be `pg_temp.<name>`. */
const TEMP_OBJECTS: string[][] = [
  ['function'],
  ['procedure'],
  ['type'],
  ['domain'],
  ['aggregate'],
  ['collation'],
  ['conversion'],
  ['default', 'conversion'],
  ['operator', 'class'],
  ['operator', 'family'],
  ['operator'],
  ['statistics'],
  ['text', 'search', 'parser'],
  ['text', 'search', 'dictionary'],
  ['text', 'search', 'template'],
  ['text', 'search', 'configuration'],
]

/** CREATE <function, type, domain, operator …> pg_temp.<name>: lives in the session's temp schema. */
function checkTempObject(t: Token[], k: number): Hit {
  const kind = TEMP_OBJECTS.find((words) => words.every((w, i) => isWord(t[k + i], w)))
  if (!kind) return undefined
  k += kind.length
  if (isWord(t[k], 'if') && isWord(t[k + 1], 'not') && isWord(t[k + 2], 'exists')) k += 3
  if (!tempSchemaAt(t, k)) return undefined
  const what = `CREATE ${kind.join(' ').toUpperCase()} pg_temp.…`
  return ['session-temp-table', `${what} creates it in the session's temporary schema; ${LEAK}`]
}

function checkCreate(t: Token[]): Hit {
  let k = isWord(t[1], 'or') && isWord(t[2], 'replace') ? 3 : 1
  const object = checkTempObject(t, k)
  if (object) return object
  if (isWord(t[k], 'global', 'local')) k++
  let temp = isWord(t[k], 'temp', 'temporary')
  if (temp || isWord(t[k], 'unlogged')) k++
  if (isWord(t[k], 'recursive')) k++
  const kind = t[k]?.value ?? ''
  if (!isWord(t[k++], 'table', 'view', 'sequence')) return undefined
  if (isWord(t[k], 'if') && isWord(t[k + 1], 'not') && isWord(t[k + 2], 'exists')) k += 3
  temp ||= tempSchemaAt(t, k)
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
    if (isWord(t[k], 'temp', 'temporary') || tempSchemaAt(t, k)) {
      return ['session-temp-table', `SELECT … INTO TEMP creates a session-level temporary table; ${LEAK}`]
    }
  }
  return undefined
}

/**
 * `[WITH …] UPDATE [ONLY] [pg_catalog.]pg_settings …`: the documented equivalent of `SET` (the view's rule
 * calls `set_config(name, setting, false)`), so session-level.
 */
function checkUpdateSettings(t: Token[]): Hit {
  for (const i of topLevel(t, 0)) {
    if (!isWord(t[i], 'update')) continue
    let k = isWord(t[i + 1], 'only') ? i + 2 : i + 1
    if (t[k]?.value === 'pg_catalog' && isPunct(t[k + 1], '.')) k += 2
    const name = t[k]
    if (
      (name?.kind === 'word' || name?.kind === 'ident') &&
      name.value === 'pg_settings' &&
      !isPunct(t[k + 1], '.')
    )
      return ['session-set', `UPDATE pg_settings is SET: it changes session state; ${LEAK}`]
    return undefined
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

/**
 * The index of the statement EXPLAIN runs (after its options) when it is `EXPLAIN ANALYZE`, -1 when the
 * EXPLAIN only plans. `EXPLAIN ANALYZE`, `EXPLAIN ANALYSE VERBOSE`, `EXPLAIN (ANALYZE [true|on|1|'t'], …)`.
 */
export function explained(t: Token[]): number {
  let k = 1
  let analyze = false
  if (isPunct(t[1], '(')) {
    let depth = 0
    for (; k < t.length; k++) {
      if (isPunct(t[k], '(')) depth++
      else if (isPunct(t[k], ')') && --depth === 0) break
      else if (
        depth === 1 &&
        isWord(t[k], 'analyze', 'analyse') &&
        (isPunct(t[k - 1], '(') || isPunct(t[k - 1], ','))
      ) {
        const v = t[k + 1]
        if (!v || isPunct(v, ',') || isPunct(v, ')')) analyze = true
        else if (v.kind === 'word' || v.kind === 'number') analyze = parseBool(v.value) ?? true
        else if (v.kind === 'string') analyze = parseBool(v.value.slice(1, -1)) ?? true
      }
    }
    k++
  } else {
    for (; isWord(t[k], 'analyze', 'analyse', 'verbose'); k++) if (!isWord(t[k], 'verbose')) analyze = true
  }
  return analyze ? k : -1
}

/**
 * Does this statement only store the code in it, running none of it now? CREATE FUNCTION / PROCEDURE /
 * RULE / POLICY / VIEW (not materialized), a CREATE TABLE's column definitions (not `… AS`, not a partition
 * bound), anything created `WITH NO DATA`.
 */
export function storesCode(t: Token[]): boolean {
  if (!isWord(t[0], 'create')) return false
  let k = isWord(t[1], 'or') && isWord(t[2], 'replace') ? 3 : 1
  if (isWord(t[k], 'function', 'procedure', 'rule', 'policy')) return true
  const n = t.length
  if (isWord(t[n - 3], 'with') && isWord(t[n - 2], 'no') && isWord(t[n - 1], 'data')) return true
  while (isWord(t[k], 'global', 'local', 'temp', 'temporary', 'unlogged', 'recursive')) k++
  if (isWord(t[k], 'view')) return true
  if (!isWord(t[k], 'table')) return false
  for (const i of topLevel(t, k)) if (isWord(t[i], 'as', 'partition')) return false
  return true
}

/** The statement-level rule for the tokens of one statement, or undefined. */
export function statementRule(t: Token[], raw: (tok: Token | undefined) => string, dialect: Dialect): Hit {
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
      // PREPARE TRANSACTION ends the transaction; the prepared transaction is server-wide, not session state.
      if (isWord(t[1], 'transaction')) return undefined
      return ['sql-prepare', `PREPARE creates a session-level prepared statement; ${LEAK}`]
    case 'execute':
      if (dialect === 'plpgsql') return undefined // PL/pgSQL's EXECUTE is dynamic SQL (read by the caller)
      return [
        'sql-prepare',
        `EXECUTE uses a session-level prepared statement the next server connection lacks`,
      ]
    case 'deallocate':
      return [
        'sql-prepare',
        `${verb} uses a session-level prepared statement the next server connection lacks`,
      ]
    case 'declare':
      return dialect === 'sql' ? checkDeclare(t) : undefined
    case 'create':
      return checkCreate(t)
    case 'update':
      return checkUpdateSettings(t)
    case 'select':
    case 'with':
      return checkUpdateSettings(t) ?? (dialect === 'sql' ? checkSelectInto(t) : undefined)
    case 'load':
      return ['load', 'LOAD loads a library into one server session only; other pooled connections lack it']
    case 'explain': {
      const k = explained(t)
      const hit = k > 0 ? statementRule(t.slice(k), raw, 'sql') : undefined
      return hit && [hit[0], `EXPLAIN ANALYZE runs the statement: ${hit[1]}`]
    }
    default:
      return undefined
  }
}
