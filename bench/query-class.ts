/**
 * Why the shared pool builds its queries as a subclass of postgres.js's Query (src/pool/query-class.ts), as a
 * count anyone can rerun (not part of `npm run bench`; no database needed, nothing connects):
 *
 *   node bench/query-class.ts
 *
 * Each case runs in a fresh `node --trace-opt` child that constructs 300 000 objects in a loop, and counts
 * the TurboFan compilations V8 aborted ("Bailed out due to dependency change") and completed. A class with
 * a computed-key static accessor (postgres.js's Query and Result declare `static get [Symbol.species]`) is
 * created in dictionary mode, and code constructing it keeps aborting. Once the class is some object's
 * prototype (a subclass extends it, or client/fast-class.ts's `fastClass`), V8 moves it to fast mode and
 * the same code compiles.
 */
import { spawnSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { pathToFileURL } from 'node:url'
import { LIB_OUT, loadLib } from './lib-build.ts'

const postgresEntry = pathToFileURL(createRequire(import.meta.url).resolve('postgres')).href
// hono-pooler's src/, bundled (plain node resolves none of its extensionless imports).
await loadLib()
const libUrl = pathToFileURL(LIB_OUT).href

const PROMISE_CLASS = `
const Species = class extends Promise {
  constructor(a) { super(() => {}); this.a = a }
  static get [Symbol.species]() { return Promise }
}
const Plain = class extends Promise { constructor(a) { super(() => {}); this.a = a } }
`
const CASES: [string, string][] = [
  [
    'Promise subclass with static get [Symbol.species]',
    `${PROMISE_CLASS} const make = (i) => new Species(i)`,
  ],
  [
    'the same class, constructed through an empty subclass',
    `${PROMISE_CLASS} const Sub = class extends Species {}; const make = (i) => new Sub(i)`,
  ],
  [
    "the same class after hono-pooler's fastClass() (client/fast-class.ts)",
    `${PROMISE_CLASS} const { fastClass } = await import(${JSON.stringify(libUrl)})
     fastClass(Species); const make = (i) => new Species(i)`,
  ],
  ['Promise subclass without a static accessor', `${PROMISE_CLASS} const make = (i) => new Plain(i)`],
  [
    "postgres.js's sql`…` (new Query)",
    `const { default: postgres } = await import(${JSON.stringify(postgresEntry)})
     const sql = postgres('postgres://u:p@127.0.0.1:1/db', { max: 1 })
     const make = (i) => sql\`select \${i}\``,
  ],
  [
    "the same Query built through hono-pooler's subclass (pool/query-class.ts)",
    `const { default: postgres } = await import(${JSON.stringify(postgresEntry)})
     const sql = postgres('postgres://u:p@127.0.0.1:1/db', { max: 1 })
     const { queryFactory } = await import(${JSON.stringify(libUrl)})
     const factory = queryFactory(sql)
     const strings = Object.assign(['select ', ''], { raw: ['select ', ''] })
     const make = (i) => factory.tagged(strings, [i])`,
  ],
]

console.log('| constructed 300 000 times | aborted compilations | completed |')
console.log('|---|---|---|')
for (const [name, setup] of CASES) {
  const script = `${setup}
let keep
for (let i = 0; i < 300000; i++) keep = make(i)
if (!keep) throw new Error('nothing built')
process.exit(0)`
  const r = spawnSync(process.execPath, ['--trace-opt', '--input-type=module', '-e', script], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  })
  if (r.status !== 0) throw new Error(`${name}: exited ${r.status}\n${r.stderr}`)
  const aborted = (r.stdout.match(/aborted optimizing/g) ?? []).length
  const completed = (r.stdout.match(/completed optimizing/g) ?? []).length
  console.log(`| ${name} | ${aborted} | ${completed} |`)
}
