/**
 * The guard's rule catalog: rule ids, the finding shape and, per rule, what it refuses and the safe
 * alternative (used in error messages and the README table). `checkSql` lives in `./rules`.
 */

/**
 * Identifier of a guard rule: a class of statements that only work with a dedicated server session.
 *
 * @example
 * ```ts
 * const rule: GuardRule = 'session-set'
 * ```
 */
export type GuardRule =
  | 'session-set'
  | 'listen'
  | 'sql-prepare'
  | 'with-hold-cursor'
  | 'session-temp-table'
  | 'load'
  | 'session-advisory-lock'
  | 'undecidable'

/**
 * One statement refused by the guard.
 *
 * @example
 * ```ts
 * import { checkSql } from './rules'
 *
 * const [finding] = checkSql('select 1; set search_path = app')
 * // finding.rule === 'session-set', finding.offset === 10, finding.statement === 'set search_path = app'
 * ```
 */
export interface GuardFinding {
  rule: GuardRule
  /** Excerpt of the offending statement: whitespace collapsed, at most 80 characters (cut with `…`). */
  statement: string
  /** Offset in the checked text of the statement, or of the offending function call. */
  offset: number
  /** One line: what the statement does wrong behind a transaction-mode pooler. */
  message: string
  /** One line: the safe alternative. */
  fix: string
}

/**
 * What each rule refuses and the safe alternative, e.g. for a documentation table.
 *
 * @example
 * ```ts
 * for (const [rule, { what, fix }] of Object.entries(GUARD_RULES)) console.log(`| ${rule} | ${what} | ${fix} |`)
 * ```
 */
export const GUARD_RULES: Record<GuardRule, { what: string; fix: string }> = {
  'session-set': {
    what: 'SET / SET SESSION / RESET / SET ROLE / SET SESSION AUTHORIZATION / set_config(…, …, false) / UPDATE pg_settings / setseed()',
    fix: 'use SET LOCAL or set_config(name, value, true) inside sql.begin, or withSettings(sql, settings, fn)',
  },
  listen: {
    what: 'LISTEN / UNLISTEN',
    fix: 'use a session-mode or direct connection for LISTEN, or Supabase Realtime',
  },
  'sql-prepare': {
    what: 'PREPARE / EXECUTE / DEALLOCATE',
    fix: 'use plain parameterized queries (values as sql`` tagged-template parameters); the driver prepares them itself',
  },
  'with-hold-cursor': {
    what: 'DECLARE … CURSOR WITH HOLD',
    fix: 'use a cursor without HOLD inside sql.begin, or sql.cursor()',
  },
  'session-temp-table': {
    what: 'CREATE TEMP TABLE without ON COMMIT DROP, CREATE TEMP VIEW/SEQUENCE, SELECT … INTO TEMP, CREATE FUNCTION/PROCEDURE/TYPE/DOMAIN/OPERATOR/AGGREGATE … pg_temp.<name>',
    fix: 'create the temporary table with ON COMMIT DROP inside sql.begin; create functions, types and domains in a real schema (or drop them before that sql.begin ends)',
  },
  load: {
    what: "LOAD 'library'",
    fix: 'preload the library on the server (shared_preload_libraries or session_preload_libraries)',
  },
  'session-advisory-lock': {
    what: 'pg_advisory_lock / pg_try_advisory_lock / pg_advisory_unlock[_all] (session-level advisory locks)',
    fix: 'use pg_advisory_xact_lock / pg_try_advisory_xact_lock inside sql.begin',
  },
  undecidable: {
    what: "what cannot be read from the SQL: a DO block's EXECUTE of a computed string, a DO block in another language, set_config(…, …, <expression or unbound $n>)",
    fix: 'write it so the guard can read it (constant SQL text, is_local as a literal true or a bound value), or run it over a session-mode or direct connection',
  },
}
