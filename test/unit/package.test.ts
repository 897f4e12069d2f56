import { execFileSync } from 'node:child_process'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { beforeAll, describe, expect, it } from 'vitest'
import * as source from '../../src'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))

describe('the published package', () => {
  beforeAll(() => {
    execFileSync(join(root, 'node_modules/.bin/tsup'), { cwd: root, stdio: 'pipe' })
  }, 120_000)

  it('exports map, types and peer dependencies', () => {
    expect(pkg.name).toBe('hono-pooler')
    expect(pkg.type).toBe('module')
    expect(pkg.exports['.']).toEqual({
      types: './dist/index.d.ts',
      import: './dist/index.js',
      default: './dist/index.js',
    })
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual([
      '@opentelemetry/api',
      'hono',
      'postgres',
      'zod',
    ])
    // OpenTelemetry is optional: npm installs nothing for it, and nothing imports it statically.
    expect(pkg.peerDependenciesMeta).toEqual({ '@opentelemetry/api': { optional: true } })
    for (const dep of ['hono', 'postgres', 'zod']) expect(pkg.dependencies?.[dep]).toBeUndefined()
  })

  it('dist exports exactly what src/index.ts exports', async () => {
    const dist = await import(join(root, 'dist/index.js'))
    expect(Object.keys(dist).sort()).toEqual(Object.keys(source).sort())
    expect(typeof dist.pooler).toBe('function')
    const internal = await import(join(root, 'dist/internal.js'))
    const internalSource = await import('../../src/internal')
    expect(Object.keys(internal).sort()).toEqual(Object.keys(internalSource).sort())
    expect(pkg.exports['./internal']).toEqual({
      types: './dist/internal.d.ts',
      import: './dist/internal.js',
      default: './dist/internal.js',
    })
    const dts = readFileSync(join(root, 'dist/index.d.ts'), 'utf8')
    for (const name of [
      'PoolerVariables',
      'PoolerEnv',
      'PoolerOptions',
      'GuardFinding',
      'GuardRule',
      'PoolerErrorCode',
    ])
      expect(dts).toContain(name)
  })

  it('ships the hono-pooler command: bin → dist/cli.js, a node shebang, executable, runs with plain node', () => {
    expect(pkg.bin).toEqual({ 'hono-pooler': './dist/cli.js' })
    const cli = join(root, 'dist/cli.js')
    expect(readFileSync(cli, 'utf8').startsWith('#!/usr/bin/env node\n')).toBe(true)
    expect(statSync(cli).mode & 0o111).not.toBe(0)
    expect(execFileSync(process.execPath, [cli, '--help'], { encoding: 'utf8' })).toMatch(
      /hono-pooler doctor \[URL\]/,
    )
  })

  it('never bundles postgres.js, hono or zod (the workerd export condition of postgres must survive)', () => {
    // Every file of dist/ (the entries share chunks).
    const js = readdirSync(join(root, 'dist'))
      .filter((f) => f.endsWith('.js'))
      .map((f) => readFileSync(join(root, 'dist', f), 'utf8'))
      .join('\n')
    expect(js).toMatch(/from ["']postgres["']/)
    expect(js).toMatch(/from ["']hono\/adapter["']/)
    expect(js).toMatch(/from ["']zod\/v4\/mini["']/) // zod ^3.25 and ^4 both ship it
    expect(js).not.toContain('function Postgres(') // postgres.js's own source
    expect(js).not.toMatch(/from ["']cloudflare:sockets["']/) // only ever a dynamic import, on workerd
    expect(js).not.toMatch(/from ["']@opentelemetry\/api["']|import\(["']@opentelemetry/) // loaded only when asked
  })
})

describe('the export surface', () => {
  it("is exactly what the README's Exports section lists", () => {
    const index = readFileSync(join(root, 'src/index.ts'), 'utf8')
    const exported = new Set(
      [...index.matchAll(/export (?:type )?\{([^}]*)\}/g)]
        .flatMap((m) => m[1]!.split(','))
        .map((x) => x.trim().replace(/^type /, ''))
        .filter(Boolean),
    )
    for (const name of Object.keys(source)) expect(exported).toContain(name)
    const readme = readFileSync(join(root, 'README.md'), 'utf8')
    const section = readme.slice(
      readme.indexOf('## Exports'),
      readme.indexOf('\n## ', readme.indexOf('## Exports') + 5),
    )
    const listed = new Set(
      section
        .split('\n')
        .filter((l) => l.startsWith('| `'))
        .flatMap((l) => [...l.split('|')[1]!.matchAll(/`([A-Za-z_]+)`/g)].map((m) => m[1]!)),
    )
    expect([...listed].sort()).toEqual([...exported].sort())
  })
})
