/**
 * The `hono-pooler` command as tests run it: src/cli/main.ts built by tsup (as `npm run build` does, but
 * into a directory of its own per test file, so parallel files and the package test never share dist/),
 * then run as a child process with plain `node`.
 */
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'tsup'

export const root = join(dirname(fileURLToPath(import.meta.url)), '../..')

/**
 * Builds the CLI; returns the path of the bundle and a cleanup. The directory is inside the repository so
 * that `postgres` resolves from its node_modules, as it does from an installed package.
 *
 * @example
 * const cli = await buildCli(); await runCli(cli.path, ['--help']); cli.remove()
 */
export async function buildCli(): Promise<{ path: string; remove(): void }> {
  mkdirSync(join(root, '.tmp'), { recursive: true })
  const outDir = mkdtempSync(join(root, '.tmp', 'cli-'))
  await build({
    config: false,
    entry: { cli: join(root, 'src/cli/main.ts') },
    outDir,
    format: ['esm'],
    target: 'es2022',
    platform: 'node',
    silent: true,
    dts: false,
    sourcemap: false,
    clean: false,
    external: ['hono', 'postgres', 'zod', 'cloudflare:sockets'],
  })
  return { path: join(outDir, 'cli.js'), remove: () => rmSync(outDir, { recursive: true, force: true }) }
}

export interface CliRun {
  code: number | null
  stdout: string
  stderr: string
  ms: number
}

/**
 * Runs the built CLI with the given arguments; `env` replaces DATABASE_URL and friends (the test's own
 * environment never leaks a stack URL into a run that should not have one). Killed after `killAfter` ms.
 *
 * @example
 * const r = await runCli(cli, ['doctor', '--json'], { DATABASE_URL: stack.databaseUrl })
 */
export function runCli(
  cli: string,
  args: string[],
  env: Record<string, string> = {},
  killAfter = 60_000,
): Promise<CliRun> {
  const started = Date.now()
  const base = { ...process.env }
  for (const k of Object.keys(base))
    if (/^(DATABASE_URL|PGBOUNCER_|NODE_EXTRA_CA_CERTS)/.test(k)) delete base[k]
  const child = spawn(process.execPath, [cli, ...args], {
    env: { ...base, NO_COLOR: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), killAfter)
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, ms: Date.now() - started })
    }),
  )
}

/** The `--json` report of `doctor`. */
export interface Report {
  url: string
  checks: {
    id: string
    status: 'ok' | 'warn' | 'fail' | 'skip'
    message: string
    fix?: string
    ms?: number
  }[]
  server?: { version: string; maxConnections: number; used: number; groups: unknown[] }
  budget?: { fraction: number; poolSize: number; perInstance: number; overBudget: boolean }
}

/**
 * @example
 * check(report, 'auth').status // 'ok'
 */
export function check(report: Report, id: string): Report['checks'][number] {
  const c = report.checks.find((x) => x.id === id)
  if (!c) throw new Error(`no check "${id}" in ${JSON.stringify(report.checks.map((x) => x.id))}`)
  return c
}
