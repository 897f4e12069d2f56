/**
 * fastClass (src/client/fast-class.ts): postgres.js's Query and Result, declared with a computed-key static
 * accessor, leave V8's dictionary mode, and nothing observable about them changes. V8's own view is asked
 * in a child process (`%HasFastProperties` needs --allow-natives-syntax); the speed it buys is measured by
 * `node bench/query-class.ts` and the benches, not here.
 */
import { spawnSync } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import postgres from 'postgres'
import { beforeAll, describe, expect, it } from 'vitest'
import { fastClass, fastSpeciesClasses } from '../../src/client/fast-class'
import { bundleSrc } from '../support/bundle-src'

const root = fileURLToPath(new URL('../..', import.meta.url))
const postgresUrl = pathToFileURL(createRequire(import.meta.url).resolve('postgres')).href
// src/ bundled for the child (plain node resolves neither its extensionless imports nor, before 22.18, .ts).
const lib = join(root, '.tmp', 'fast-class-test', 'lib.mjs')
beforeAll(async () => {
  mkdirSync(join(root, '.tmp', 'fast-class-test'), { recursive: true })
  await bundleSrc(['fastClass', 'fastSpeciesClasses'], 'client/fast-class', lib)
})

/** Runs `body` as an ES module in a child Node with natives syntax; returns what it printed (JSON). */
function inV8(body: string): unknown {
  const script = `
import { fastClass, fastSpeciesClasses } from ${JSON.stringify(pathToFileURL(lib).href)}
import postgres from ${JSON.stringify(postgresUrl)}
const fast = (o) => %HasFastProperties(o);
${body}`
  const r = spawnSync(process.execPath, ['--allow-natives-syntax', '--input-type=module', '-e', script], {
    encoding: 'utf8',
  })
  if (r.status !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout)
}

describe('fastClass', () => {
  it("moves a class with a static Symbol.species getter to V8's fast mode", () => {
    expect(
      inV8(`
const C = class extends Promise { static get [Symbol.species]() { return Promise } };
const before = fast(C);
fastClass(C);
console.log(JSON.stringify([before, fast(C)]))`),
    ).toEqual([false, true])
  })

  it("postgres.js's Query and Result", () => {
    expect(
      inV8(`
const sql = postgres('postgres://u:p@127.0.0.1:1/db', { max: 1 })
const Query = sql\`select 1\`.constructor
const Result = (await import(${JSON.stringify(postgresUrl.replace(/index\.js$/, 'result.js'))})).default
const before = [fast(Query), fast(Result)]
fastSpeciesClasses(Query)
fastSpeciesClasses(Result)
console.log(JSON.stringify([before, [fast(Query), fast(Result)]]))
await sql.end({ timeout: 0 })`),
    ).toEqual([
      [false, false],
      [true, true],
    ])
  })

  it('changes nothing observable', () => {
    const sql = postgres('postgres://u:p@127.0.0.1:1/db', { max: 1 })
    const q: any = sql`select ${1}`
    const Query = q.constructor
    const keys = (o: object) => Reflect.ownKeys(o).map(String)
    const before = [keys(Query), keys(Query.prototype), Object.getPrototypeOf(Query), Query[Symbol.species]]
    fastSpeciesClasses(Query)
    fastClass(Query) // once per class: again is nothing
    expect([keys(Query), keys(Query.prototype), Object.getPrototypeOf(Query), Query[Symbol.species]]).toEqual(
      before,
    )
    expect(sql`select 1`).toBeInstanceOf(Query)
    void sql.end({ timeout: 0 })
  })
})
