/**
 * hono-pooler as a consumer gets it: `npm pack`, then `npm install <tarball>` into a fresh app outside this
 * repository (with hono, postgres, zod and the other libraries from the npm registry). The tarball holds no
 * dev-only file; every `<!-- consumer: x.ts -->` snippet of README.md and docs/recipes.md typechecks against
 * it (NodeNext resolution, as a Node app would); the Node server snippet serves, and the Drizzle and Kysely
 * ones run, against the local PgBouncer — with the repository's Node and, when it is older, the system's.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort } from '../../scripts/stack.ts'
import { appUrl, prepareSchema } from '../support/app-schema'
import { sleep, waitForNoClients } from '../support/stack'

const run = promisify(execFile)
const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const tmp = mkdtempSync(join(tmpdir(), 'hp-consumer-'))
const pkgDir = join(tmp, 'pkg')
const appDir = join(tmp, 'app')
const APP = 'hp-consumer'
const children: ChildProcess[] = []

/** The `<!-- consumer: name -->` ts blocks of a markdown file. */
function snippets(file: string): [string, string][] {
  const text = readFileSync(join(root, file), 'utf8')
  return [...text.matchAll(/<!-- consumer: ([\w.-]+) -->\n```ts\n([\s\S]*?)\n```/g)].map((m) => [
    m[1]!,
    m[2]!,
  ])
}
const version = (name: string) =>
  JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')).version as string

/** Node binaries to run the compiled snippets with: this one, and the system's when it is another major. */
async function nodes(): Promise<string[]> {
  const out = [process.execPath]
  try {
    const { stdout } = await run('/usr/bin/node', ['--version'])
    if (stdout.trim().split('.')[0] !== process.version.split('.')[0]) out.push('/usr/bin/node')
  } catch {} // no system Node
  return out
}

let packed: { filename: string; files: { path: string }[] }
let tsc: { code: number; output: string }
const all = [...snippets('README.md'), ...snippets('docs/recipes.md')]

beforeAll(async () => {
  // Build and pack a copy of the package (the unit project's package test builds dist/ in the repository
  // at the same time); `npm pack` in the repository does the same through its prepack script.
  mkdirSync(pkgDir)
  for (const f of ['package.json', 'README.md', 'LICENSE', 'tsup.config.ts', 'src'])
    cpSync(join(root, f), join(pkgDir, f), { recursive: true })
  const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8'))
  writeFileSync(join(pkgDir, 'tsconfig.json'), JSON.stringify({ ...tsconfig, include: ['src'] }))
  symlinkSync(join(root, 'node_modules'), join(pkgDir, 'node_modules'))
  await run(join(root, 'node_modules/.bin/tsup'), [], { cwd: pkgDir })
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], {
    cwd: pkgDir,
  })
  packed = JSON.parse(stdout)[0]

  // A fresh app outside the repository, installing the tarball like a user would.
  mkdirSync(join(appDir, 'src'), { recursive: true })
  writeFileSync(
    join(appDir, 'package.json'),
    JSON.stringify({ name: 'consumer-app', private: true, type: 'module' }),
  )
  const deps = [
    'hono',
    'postgres',
    'zod',
    '@hono/node-server',
    'drizzle-orm',
    'kysely',
    'kysely-postgres-js',
    '@types/node',
  ].map((d) => `${d}@${version(d)}`)
  await run(
    'npm',
    ['install', '--no-audit', '--no-fund', '--prefer-offline', join(tmp, packed.filename), ...deps],
    { cwd: appDir, timeout: 240_000 },
  )
  for (const [name, code] of all) writeFileSync(join(appDir, 'src', name), `${code}\n`)
  writeFileSync(
    join(appDir, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'NodeNext',
        moduleResolution: 'NodeNext',
        strict: true,
        skipLibCheck: true,
        types: ['node'],
        outDir: 'out',
        rootDir: 'src',
      },
      include: ['src'],
    }),
  )
  tsc = await run(join(root, 'node_modules/.bin/tsc'), ['-p', appDir]).then(
    () => ({ code: 0, output: '' }),
    (e: { code: number; stdout: string }) => ({ code: e.code, output: e.stdout }),
  )
  await prepareSchema()
}, 300_000)

afterAll(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  rmSync(tmp, { recursive: true, force: true })
})

describe('the package as a consumer installs it', () => {
  it('the tarball holds the build, the types, the sources of the source maps, README and LICENSE — no dev files', () => {
    const files = packed.files.map((f) => f.path).sort()
    for (const f of [
      'LICENSE',
      'README.md',
      'package.json',
      'dist/index.js',
      'dist/index.d.ts',
      'dist/internal.js',
    ])
      expect(files).toContain(f)
    expect(files.filter((f) => !/^(dist|src)\//.test(f))).toEqual(['LICENSE', 'README.md', 'package.json'])
    const pkg = JSON.parse(readFileSync(join(appDir, 'node_modules/hono-pooler/package.json'), 'utf8'))
    expect(pkg.license).toBe('MIT')
    expect(pkg.engines).toEqual({ node: '>=20' })
    expect(readFileSync(join(appDir, 'node_modules/hono-pooler/LICENSE'), 'utf8')).toMatch(/^MIT License/)
  })

  it('every snippet of README.md and docs/recipes.md typechecks against it', () => {
    expect(all.map(([name]) => name).sort()).toEqual([
      'drizzle.ts',
      'hyperdrive.ts',
      'kysely.ts',
      'node.ts',
      'vercel.ts',
      'worker.ts',
    ])
    expect(tsc.output).toBe('')
    expect(tsc.code).toBe(0)
  })

  it('the Node quick start serves', async () => {
    for (const node of await nodes()) {
      const port = await freePort()
      const child = spawn(node, [join(appDir, 'out/node.js')], {
        cwd: appDir,
        env: { ...process.env, DATABASE_URL: appUrl(APP), PORT: String(port) },
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      children.push(child)
      let out = ''
      child.stdout!.on('data', (d) => (out += d))
      child.stderr!.on('data', (d) => (out += d))
      const deadline = Date.now() + 20_000
      while (!out.includes('listening') && child.exitCode === null && Date.now() < deadline) await sleep(50)
      expect(out).toContain(`listening on http://127.0.0.1:${port}`)
      const res = await fetch(`http://127.0.0.1:${port}/now`)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ now: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) })
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
    expect(await waitForNoClients(APP)).toEqual([])
  })

  for (const name of ['drizzle', 'kysely'])
    it(`the ${name} snippet inserts and lists notes`, async () => {
      const script = `
        const { default: app } = await import(${JSON.stringify(join(appDir, `out/${name}.js`))})
        const created = await app.request('/notes', { method: 'POST' })
        const list = await app.request('/notes')
        console.log(JSON.stringify({ created: [created.status, await created.json()], list: await list.json() }))`
      for (const node of await nodes()) {
        const { stdout } = await run(node, ['--input-type=module', '-e', script], {
          cwd: appDir,
          env: { ...process.env, DATABASE_URL: appUrl(APP) },
        })
        const { created, list } = JSON.parse(stdout)
        expect(created[0]).toBe(201)
        expect(created[1]).toMatchObject({ id: expect.any(Number), text: `from ${name}` })
        expect(list.map((n: { id: number }) => n.id)).toContain(created[1].id)
      }
      expect(await waitForNoClients(APP)).toEqual([])
    })
})
