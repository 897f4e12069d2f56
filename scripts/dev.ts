/**
 * `npm run dev`: the notes example (examples/) in `wrangler dev` (workerd) on http://127.0.0.1:8787.
 *
 * Without DATABASE_URL it starts the project's own Postgres + PgBouncer (transaction mode) stack on free
 * loopback ports; with DATABASE_URL set it uses that database instead. Either way it applies
 * examples/schema.sql, hands the URL to wrangler as a secret (a private env file merged from .dev.vars; the
 * password never appears on a command line), and on Ctrl-C stops wrangler, workerd and the stack.
 *
 *   npm run dev                          # local stack
 *   DATABASE_URL=postgres://… npm run dev # your database (Supabase: the pooler URL, port 6543)
 *   PORT=8788 npm run dev -- --log-level debug   # extra arguments go to wrangler dev
 *
 * Node runs this file directly (type stripping): keep to erasable TypeScript syntax.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { applySchema } from '../examples/schema.ts'
import { type Stack, startStack } from './stack.ts'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const HOST = process.env.HOST ?? '127.0.0.1'
const PORT = Number(process.env.PORT ?? 8787)

const hide = (url: string) => url.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:/?#@]*):[^@/?#]*@/i, '$1:***@')

/** .dev.vars (if any) with DATABASE_URL replaced, in a private temp file for `wrangler dev --env-file`. */
function writeEnvFile(dir: string, databaseUrl: string): string {
  const devVars = join(root, '.dev.vars')
  const kept = existsSync(devVars)
    ? readFileSync(devVars, 'utf8')
        .split('\n')
        .filter((l) => l.trim() && !/^\s*(export\s+)?DATABASE_URL\s*=/.test(l))
    : []
  const file = join(dir, 'dev.env')
  writeFileSync(file, `${[...kept, `DATABASE_URL=${JSON.stringify(databaseUrl)}`].join('\n')}\n`, {
    mode: 0o600,
  })
  return file
}

function wranglerBin(): string {
  const pkg = createRequire(import.meta.url).resolve('wrangler/package.json')
  return join(dirname(pkg), 'bin', 'wrangler.js')
}

async function main(): Promise<void> {
  let stack: Stack | undefined
  let wrangler: ChildProcess | undefined
  let tmp: string | undefined
  let stopping: Promise<void> | undefined

  const stop = (code: number) =>
    (stopping ??= (async () => {
      if (wrangler && wrangler.exitCode === null && wrangler.signalCode === null) {
        const exited = new Promise((r) => wrangler!.once('exit', r))
        // Ctrl-C in a terminal already signalled wrangler (same process group); a second SIGINT is harmless.
        wrangler.kill('SIGINT')
        const timer = setTimeout(() => wrangler!.kill('SIGKILL'), 10_000)
        await exited
        clearTimeout(timer)
      }
      await stack?.stop()
      if (tmp) rmSync(tmp, { recursive: true, force: true })
      process.exit(code)
    })())
  process.on('SIGINT', () => void stop(0))
  process.on('SIGTERM', () => void stop(0))
  process.on('SIGHUP', () => void stop(0))
  // `npm run` puts a shell between npm and this script that does not forward SIGTERM: if our parent goes
  // away (npm was killed), clean up instead of leaving wrangler, workerd and the stack running.
  const parent = process.ppid
  setInterval(() => process.ppid !== parent && void stop(0), 500).unref()

  try {
    stack = await startStack()
    await applySchema(stack.directUrl)
    tmp = mkdtempSync(join(tmpdir(), 'hono-pooler-dev-'))
    const envFile = writeEnvFile(tmp, stack.databaseUrl)
    const where = stack.external
      ? `${hide(stack.databaseUrl)} (from DATABASE_URL)`
      : `${hide(stack.databaseUrl)} (local PgBouncer, transaction mode)`
    console.log(`hono-pooler dev: notes example (Workers, wrangler dev) on http://${HOST}:${PORT} → ${where}`)
    wrangler = spawn(
      process.execPath,
      [
        wranglerBin(),
        'dev',
        '--config',
        join(root, 'wrangler.toml'),
        '--ip',
        HOST,
        '--port',
        String(PORT),
        '--env-file',
        envFile,
        ...process.argv.slice(2),
      ],
      {
        cwd: root,
        stdio: 'inherit',
        env: {
          ...process.env,
          DATABASE_URL: undefined, // wrangler gets it from the env file only
          WRANGLER_SEND_METRICS: 'false',
          CLOUDFLARE_CF_FETCH_ENABLED: process.env.CLOUDFLARE_CF_FETCH_ENABLED ?? 'false',
        },
      },
    )
    wrangler.once('exit', (code, signal) => void stop(code ?? (signal ? 0 : 1)))
  } catch (e) {
    console.error(`hono-pooler dev: ${e instanceof Error ? e.message : e}`)
    await stop(1)
  }
}

void main()
