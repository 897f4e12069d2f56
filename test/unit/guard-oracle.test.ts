/**
 * Oracle: libpg-query 18.1.5 (npm, devDependency only) — the real PostgreSQL 18 parser and scanner
 * (libpg_query `18-constructive`) compiled to WASM. Never imported from src/.
 *
 * For the unit table and a few hundred generated statements, the guard's lexer, statement splitter and
 * classification must agree with PostgreSQL's own scanner tokens and parse tree.
 */
import { loadModule, parseSync, scanSync } from 'libpg-query'
import { beforeAll, describe, expect, it } from 'vitest'
import { checkSql, type GuardRule } from '../../src'
import { splitStatements, type Token, tokenize } from '../../src/sql/lexer'
import { GUARD_CASES } from '../support/guard-cases'
import { generateSql } from '../support/guard-gen'

beforeAll(async () => {
  await loadModule()
})

/** Maps libpg_query's UTF-8 byte offsets to UTF-16 offsets. */
function byteToChar(sql: string): (byte: number) => number {
  const map: number[] = []
  for (let i = 0; i < sql.length; ) {
    const cp = sql.codePointAt(i)!
    const len = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4
    for (let k = 0; k < len; k++) map.push(i)
    i += cp > 0xffff ? 2 : 1
  }
  map.push(sql.length)
  return (byte) => map[byte] ?? -1
}

interface OracleToken {
  start: number
  end: number
  name: string
  keyword: boolean
}

function oracleTokens(sql: string): OracleToken[] {
  const at = byteToChar(sql)
  return scanSync(sql)
    .tokens.filter((t) => t.tokenName !== 'SQL_COMMENT' && t.tokenName !== 'C_COMMENT')
    .map((t) => ({ start: at(t.start), end: at(t.end), name: t.tokenName, keyword: t.keywordKind > 0 }))
}

/** The token class both sides must agree on, where the scanner names it. */
function oracleClass(t: OracleToken): string | undefined {
  if (t.keyword || t.name === 'IDENT') return 'name'
  if (['SCONST', 'BCONST', 'XCONST'].includes(t.name)) return 'literal'
  if (t.name === 'ICONST' || t.name === 'FCONST') return 'number'
  if (t.name === 'PARAM') return 'param'
  return undefined
}
const CLASS: Record<Token['kind'], string> = {
  word: 'name',
  ident: 'name',
  string: 'literal',
  dollar: 'literal',
  number: 'number',
  param: 'param',
  op: 'other',
  punct: 'other',
  semicolon: 'other',
}

const isTemp = (rv: any): boolean => rv?.relpersistence === 't' || rv?.schemaname === 'pg_temp'
const ADVISORY = /^pg_(try_)?advisory_(lock|lock_shared|unlock|unlock_shared|unlock_all)$/

/** The statement-level rule PostgreSQL's parse tree implies for one raw statement. */
function statementRule(node: any): GuardRule | undefined {
  const [type, s] = Object.entries(node)[0] as [string, any]
  switch (type) {
    case 'VariableSetStmt':
      return !s.is_local && !String(s.name ?? '').startsWith('TRANSACTION') ? 'session-set' : undefined
    case 'ListenStmt':
    case 'UnlistenStmt':
      return 'listen'
    case 'PrepareStmt':
    case 'ExecuteStmt':
    case 'DeallocateStmt':
      return 'sql-prepare'
    case 'TransactionStmt':
      return s.kind === 'TRANS_STMT_PREPARE' ? 'sql-prepare' : undefined
    case 'DeclareCursorStmt':
      return (s.options ?? 0) & 0x20 ? 'with-hold-cursor' : undefined
    case 'CreateStmt':
      return isTemp(s.relation) && s.oncommit !== 'ONCOMMIT_DROP' ? 'session-temp-table' : undefined
    case 'CreateTableAsStmt':
      return isTemp(s.into?.rel) && s.into?.onCommit !== 'ONCOMMIT_DROP' ? 'session-temp-table' : undefined
    case 'ViewStmt':
      return isTemp(s.view) ? 'session-temp-table' : undefined
    case 'CreateSeqStmt':
      return isTemp(s.sequence) ? 'session-temp-table' : undefined
    case 'SelectStmt':
      return isTemp(s.intoClause?.rel) ? 'session-temp-table' : undefined
    case 'LoadStmt':
      return 'load'
    default:
      return undefined
  }
}

/** Session-level function calls anywhere in the tree, as [byte location, rule]. */
function callRules(tree: unknown, out: [number, GuardRule][] = []): [number, GuardRule][] {
  if (Array.isArray(tree)) for (const x of tree) callRules(x, out)
  else if (tree && typeof tree === 'object') {
    const call = (tree as any).FuncCall
    if (call) {
      const names: string[] = call.funcname.map((n: any) => n.String.sval)
      const name = names[names.length - 1]!
      const schemaOk = names.length === 1 || (names.length === 2 && names[0] === 'pg_catalog')
      const third = call.args?.[2]?.A_Const
      if (schemaOk && ADVISORY.test(name)) out.push([call.location, 'session-advisory-lock'])
      if (schemaOk && name === 'set_config' && third?.boolval && !third.boolval.boolval) {
        out.push([call.location, 'session-set'])
      }
    }
    // CallStmt.funccall is a bare FuncCall (a typed field, not a Node), so it has no wrapper key.
    for (const [k, v] of Object.entries(tree)) callRules(k === 'funccall' ? { FuncCall: v } : v, out)
  }
  return out
}

/** Asserts that lexer, splitter and classifier agree with PostgreSQL on `sql`. */
function agree(sql: string): void {
  const at = byteToChar(sql)
  const ours = tokenize(sql)
  const theirs = oracleTokens(sql)
  expect(ours.map((t) => [t.start, t.end])).toEqual(theirs.map((t) => [t.start, t.end]))
  theirs.forEach((t, i) => {
    const cls = oracleClass(t)
    if (cls)
      expect([sql.slice(t.start, t.end), CLASS[ours[i]!.kind]]).toEqual([sql.slice(t.start, t.end), cls])
    else expect(ours[i]!.kind).not.toBe('param')
  })

  const stmts = parseSync(sql).stmts ?? []
  const statements = splitStatements(sql)
  expect(statements.length).toBe(stmts.length)
  const expected: { rule: GuardRule; offset: number }[] = []
  stmts.forEach((raw: any, i: number) => {
    const from = at(raw.stmt_location ?? 0)
    const to = raw.stmt_len ? at((raw.stmt_location ?? 0) + raw.stmt_len) : sql.length
    const inside = theirs.filter((t) => t.start >= from && t.end <= to && t.name !== 'ASCII_59')
    const st = statements[i]!
    expect(st.offset).toBe(inside[0]?.start)
    expect(st.text).toBe(sql.slice(inside[0]?.start, inside[inside.length - 1]?.end))
    const rule = statementRule(raw.stmt)
    if (rule) expected.push({ rule, offset: st.offset })
    const calls = callRules(raw.stmt).sort((a, b) => a[0] - b[0])
    for (const [loc, r] of calls) expected.push({ rule: r, offset: at(loc) })
  })
  expect(
    checkSql(sql).map(({ rule, offset }) => ({ rule, offset })),
    sql,
  ).toEqual(expected)
}

describe('PostgreSQL parser oracle', () => {
  it.each(GUARD_CASES)('unit table: %s', (sql) => {
    agree(sql)
  })

  const generated = generateSql(
    Number(process.env.GUARD_SEED ?? 20240611),
    Number(process.env.GUARD_COUNT ?? 400),
  )
  it('generated inputs cover every rule and safe statements', () => {
    const seen = new Set(generated.flatMap((sql) => checkSql(sql).map((f) => f.rule)))
    expect(seen.size).toBe(7)
    expect(generated.filter((sql) => checkSql(sql).length === 0).length).toBeGreaterThan(30)
  })

  it.each(generated.map((sql, i) => [i, sql] as const))('generated #%i', (_, sql) => {
    agree(sql)
  })
})
