/**
 * Oracle: libpg-query 18.1.5 (npm, devDependency only) — the real PostgreSQL 18 parser and scanner
 * (libpg_query `18-constructive`) compiled to WASM. Never imported from src/.
 *
 * For the unit table and a few hundred generated statements, the guard's lexer, statement splitter and
 * classification must agree with PostgreSQL's own scanner tokens and parse tree.
 */
import { loadModule, parsePlPgSQLSync, parseSync, scanSync } from 'libpg-query'
import { beforeAll, describe, expect, it } from 'vitest'
import { checkSql, type GuardRule } from '../../src'
import { splitStatements, type Token, tokenize } from '../../src/sql/lexer'
import { DO_CASES, GUARD_CASES } from '../support/guard-cases'
import { generateSql } from '../support/guard-gen'
import { generateLabelled } from '../support/guard-labels'

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

/** A qualified name list (`[String, …]`) in the temp schema: `pg_temp.x` or `pg_temp_N.x`. */
const tempName = (names: any[] | undefined): boolean =>
  (names?.length ?? 0) >= 2 && /^pg_temp(_\d+)?$/.test(names![0].String?.sval ?? '')
const tempObject = (names: any[] | undefined): GuardRule | undefined =>
  tempName(names) ? 'session-temp-table' : undefined

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
    case 'ExplainStmt':
      return explainAnalyze(s) ? statementRule(s.query) : undefined
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
    case 'UpdateStmt': // pg_settings' update rule calls set_config(…, …, false)
      return s.relation.relname === 'pg_settings' && [undefined, 'pg_catalog'].includes(s.relation.schemaname)
        ? 'session-set'
        : undefined
    case 'CreateFunctionStmt':
      return tempObject(s.funcname)
    case 'DefineStmt': // operator, aggregate, base type, collation, text search objects
      return tempObject(s.defnames)
    case 'CompositeTypeStmt':
      return s.typevar.schemaname === 'pg_temp' ? 'session-temp-table' : undefined
    case 'CreateDomainStmt':
      return tempObject(s.domainname)
    case 'CreateEnumStmt':
    case 'CreateRangeStmt':
      return tempObject(s.typeName)
    default:
      return undefined
  }
}

/** EXPLAIN with ANALYZE (absent value, or true/on/1): the explained statement runs. */
function explainAnalyze(s: any): boolean {
  const opt = (s.options ?? []).find((o: any) => o.DefElem.defname === 'analyze')?.DefElem
  if (!opt) return false
  const v = opt.arg?.String?.sval ?? opt.arg?.Boolean?.boolval ?? opt.arg?.Integer?.ival
  return v === undefined || v === true || ['true', 'on', '1', 't', 'yes'].includes(String(v).toLowerCase())
}

/** PostgreSQL's boolin, written independently of the guard's. */
function boolin(text: string): boolean | undefined {
  const v = text.trim().toLowerCase()
  const ok = (word: string, min = 1) => v.length >= min && word.startsWith(v)
  if (ok('true') || ok('yes') || ok('on', 2) || v === '1') return true
  if (ok('false') || ok('no') || ok('off', 2) || v === '0') return false
  return undefined
}

/** set_config's is_local from the parse tree: true/false/null (NULL), a ParamRef, or undefined. */
function isLocal(node: any): boolean | null | 'param' | undefined {
  if (node?.A_Const) {
    const c = node.A_Const
    if (c.isnull) return null
    if (c.boolval) return !!c.boolval.boolval
    if (c.sval) return boolin(c.sval.sval)
    return undefined // an integer is not a boolean argument
  }
  if (node?.ParamRef) return 'param'
  if (node?.BoolExpr?.boolop === 'NOT_EXPR') {
    const v = isLocal(node.BoolExpr.args[0])
    return typeof v === 'boolean' ? !v : v === null ? null : undefined
  }
  if (node?.TypeCast) {
    const names = node.TypeCast.typeName.names.map((n: any) => n.String.sval).join('.')
    if (!['bool', 'pg_catalog.bool'].includes(names)) return undefined
    const arg = node.TypeCast.arg
    if (arg?.A_Const?.ival) return (arg.A_Const.ival.ival ?? 0) !== 0
    return isLocal(arg)
  }
  return undefined
}

/** Session-level function calls anywhere in the tree, as [byte location, rule]. Stored code is skipped. */
function callRules(tree: unknown, out: [number, GuardRule][] = []): [number, GuardRule][] {
  if (Array.isArray(tree)) for (const x of tree) callRules(x, out)
  else if (tree && typeof tree === 'object') {
    const t = tree as any
    // Stored, not run now: routine bodies, views, rules, policies, column defaults, WITH NO DATA.
    if (t.CreateFunctionStmt || t.DoStmt || t.ViewStmt || t.RuleStmt || t.CreatePolicyStmt) return out
    if ((t.CreateStmt && !t.CreateStmt.partbound) || t.CreateTableAsStmt?.into?.skipData) return out
    if (t.ExplainStmt) return explainAnalyze(t.ExplainStmt) ? callRules(t.ExplainStmt.query, out) : out
    const call = t.FuncCall
    if (call) {
      const names: string[] = call.funcname.map((n: any) => n.String.sval)
      const name = names[names.length - 1]!
      const schemaOk = names.length === 1 || (names.length === 2 && names[0] === 'pg_catalog')
      if (schemaOk && ADVISORY.test(name)) out.push([call.location, 'session-advisory-lock'])
      if (schemaOk && name === 'set_config') {
        const named = (call.args ?? []).find((a: any) => a.NamedArgExpr?.name === 'is_local')
        const arg = named ? named.NamedArgExpr.arg : call.args?.[2]
        const v = isLocal(arg)
        if (v === false || v === null) out.push([call.location, 'session-set'])
        else if (v !== true) out.push([call.location, 'undecidable'])
      }
    }
    // CallStmt.funccall is a bare FuncCall (a typed field, not a Node), so it has no wrapper key.
    for (const [k, v] of Object.entries(tree)) callRules(k === 'funccall' ? { FuncCall: v } : v, out)
  }
  return out
}

/** Every rule a SQL text implies (statement, calls, DO bodies), from PostgreSQL's parsers. */
function sqlRules(sql: string): GuardRule[] {
  return (parseSync(sql).stmts ?? []).flatMap((raw: any) => stmtRules(raw.stmt))
}
function stmtRules(stmt: any): GuardRule[] {
  if (stmt.DoStmt) return doRules(stmt.DoStmt)
  const rule = statementRule(stmt)
  return [...(rule ? [rule] : []), ...callRules(stmt).map(([, r]) => r)]
}

/** A DO body through libpg_query's PL/pgSQL parser: SQL statements, expressions and EXECUTE '…'. */
function doRules(s: any): GuardRule[] {
  const arg = (name: string) => s.args.find((a: any) => a.DefElem.defname === name)?.DefElem.arg.String.sval
  if ((arg('language') ?? 'plpgsql').toLowerCase() !== 'plpgsql') return ['undecidable']
  const fn = parsePlPgSQLSync(
    `create function f() returns void language plpgsql as $oracle$${arg('as')}$oracle$`,
  )
  const out: GuardRule[] = []
  const visit = (node: any, key: string, parent: string): void => {
    if (Array.isArray(node)) for (const x of node) visit(x, key, parent)
    else if (node && typeof node === 'object') {
      const expr = node.PLpgSQL_expr
      // a bound cursor's query (cursor_explicit_expr) runs at OPEN / FOR … IN: read as if it ran
      if (expr && key === 'sqlstmt') out.push(...sqlRules(expr.query))
      else if (
        expr &&
        (parent === 'PLpgSQL_stmt_dynexecute' || parent === 'PLpgSQL_stmt_dynfors' || key === 'dynquery')
      ) {
        const tree = (parseSync(`select ${expr.query}`) as any).stmts[0].stmt.SelectStmt.targetList[0]
          .ResTarget.val
        const text = constText(tree)
        out.push(...(text === undefined ? (['undecidable'] as GuardRule[]) : sqlRules(text)))
      } else if (expr) {
        const q = expr.parseMode === 3 ? expr.query.slice(expr.query.indexOf('=') + 1) : expr.query
        out.push(...sqlRules(/^\s*select\b/i.test(q) ? q : `select ${q}`))
      } else for (const [k, v] of Object.entries(node)) visit(v, k, k.startsWith('PLpgSQL_') ? k : parent)
    }
  }
  visit(fn, '', '')
  return out
}

/** A string constant, or `||` of string constants, from an expression tree. */
function constText(node: any): string | undefined {
  if (node?.A_Const?.sval) return node.A_Const.sval.sval
  const e = node?.A_Expr
  if (e?.kind !== 'AEXPR_OP' || e.name[0].String.sval !== '||') return undefined
  const [l, r] = [constText(e.lexpr), constText(e.rexpr)]
  return l === undefined || r === undefined ? undefined : l + r
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
  const doStatements: [number, number][] = []
  stmts.forEach((raw: any, i: number) => {
    const from = at(raw.stmt_location ?? 0)
    const to = raw.stmt_len ? at((raw.stmt_location ?? 0) + raw.stmt_len) : sql.length
    const inside = theirs.filter((t) => t.start >= from && t.end <= to && t.name !== 'ASCII_59')
    const st = statements[i]!
    expect(st.offset).toBe(inside[0]?.start)
    expect(st.text).toBe(sql.slice(inside[0]?.start, inside[inside.length - 1]?.end))
    if (raw.stmt.DoStmt) {
      const ours = checkSql(st.text).map((f) => f.rule)
      expect([st.text, ours.sort()]).toEqual([st.text, doRules(raw.stmt.DoStmt).sort()])
      doStatements.push([st.offset, st.offset + st.text.length])
      return
    }
    const rule = statementRule(raw.stmt)
    if (rule) expected.push({ rule, offset: st.offset })
    const calls = callRules(raw.stmt).sort((a, b) => a[0] - b[0])
    for (const [loc, r] of calls) expected.push({ rule: r, offset: at(loc) })
  })
  const outsideDo = checkSql(sql).filter((f) => !doStatements.some(([a, b]) => f.offset >= a && f.offset < b))
  expect(
    outsideDo.map(({ rule, offset }) => ({ rule, offset })),
    sql,
  ).toEqual(expected)
}

describe('PostgreSQL parser oracle', () => {
  it.each(GUARD_CASES)('unit table: %s', (sql) => {
    agree(sql)
  })

  it.each(DO_CASES)('DO table (PL/pgSQL parser): %s', (sql) => {
    agree(sql)
  })

  const generated = generateSql(
    Number(process.env.GUARD_SEED ?? 20240611),
    Number(process.env.GUARD_COUNT ?? 400),
  )
  it('generated inputs cover every rule and safe statements', () => {
    const seen = new Set(generated.flatMap((sql) => checkSql(sql).map((f) => f.rule)))
    expect(seen.size).toBe(8)
    expect(generated.filter((sql) => checkSql(sql).length === 0).length).toBeGreaterThan(30)
  })

  it.each(generated.map((sql, i) => [i, sql] as const))('generated #%i', (_, sql) => {
    agree(sql)
  })

  // The labelled statements (test/unit/guard-labels.test.ts), a different seed: the parser agrees too.
  it('labelled statements: lexer, splitter and rules agree with the parsers', () => {
    for (const c of generateLabelled(Number(process.env.GUARD_SEED ?? 20240611), 1500)) agree(c.sql)
  })
})
