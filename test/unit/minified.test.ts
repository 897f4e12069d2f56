/**
 * A minified Worker bundle (`wrangler deploy --minify`) renames postgres.js's classes: the guard and the
 * inliner must still recognise identifiers (`sql('name')`). This bundles the SQL text, guard and inliner
 * together with postgres.js through esbuild with --minify, and runs them against queries the minified
 * postgres.js builds (no connection is made: building a query sends nothing).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { build } from 'esbuild'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = resolve(import.meta.dirname, '../..')
let dir = ''
let m: any
let sql: any

beforeAll(async () => {
  mkdirSync(join(root, '.tmp'), { recursive: true }) // a fresh clone has no .tmp yet
  dir = mkdtempSync(join(root, '.tmp', 'minified-'))
  const entry = join(dir, 'entry.ts')
  writeFileSync(
    entry,
    [
      `export { default as postgres } from 'postgres'`,
      `export { queryText, isIdentifier } from '${root}/src/sql/query-text'`,
      `export { guardQuery } from '${root}/src/guard/query-guard'`,
      `export { inlineQuery } from '${root}/src/inline/inliner'`,
    ].join('\n'),
  )
  const out = join(dir, 'bundle.mjs')
  await build({
    entryPoints: [entry],
    outfile: out,
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'node',
    logLevel: 'silent',
  })
  m = await import(pathToFileURL(out).href)
  sql = m.postgres('postgres://u:p@127.0.0.1:1/db', { fetch_types: false, prepare: false })
}, 60_000)
afterAll(async () => {
  await sql?.end({ timeout: 0 })
  if (dir) rmSync(dir, { recursive: true, force: true })
})

describe('minified bundle (esbuild --minify)', () => {
  it('the bundle really renames postgres.js classes', () => {
    expect(sql('users').constructor.name).not.toBe('Identifier')
  })

  it('identifiers are recognised and spliced into the text', () => {
    expect(m.isIdentifier(sql('users'))).toBe(true)
    expect(m.isIdentifier({ value: 'users' })).toBe(false)
    expect(m.isIdentifier(sql`select 1`)).toBe(false)
    const q = sql`select ${sql('my col')} from ${sql('t')} where id = ${1}`
    expect(m.queryText(q).text).toBe('select "my col" from "t" where id = $1')
  })

  it('the guard sees the identifier, never a $n', () => {
    expect(m.guardQuery(sql`listen ${sql('chan')}`, 'error')).toMatchObject({ rule: 'listen' })
    expect(m.guardQuery(sql`select ${sql('settings')} from t where a = ${1}`, 'error')).toBeUndefined()
    // `set` followed by an identifier is a session SET: refused only if the identifier is read as text.
    expect(m.guardQuery(sql`set ${sql('search_path')} = public`, 'error')).toMatchObject({
      rule: 'session-set',
    })
  })

  it('the inliner never takes an identifier for a value', () => {
    const options = { ...sql.options, connection: { client_encoding: 'UTF8' } }
    const plain = sql`select n from t where id = ${42}`
    expect(m.inlineQuery(plain, options)).toBe(true)
    // With an identifier the query keeps its parameters (an identifier read as a value would be sent as a
    // quoted literal in place of a column name).
    const q = sql`select ${sql('n')} from t where id = ${42}`
    const before = [...q.strings]
    expect(m.inlineQuery(q, options)).toBe(false)
    expect(q.strings).toEqual(before)
  })
})
