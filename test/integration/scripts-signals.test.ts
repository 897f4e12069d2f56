/**
 * `npm run stack` and `npm run dev` as a script drives them (no terminal, so no Ctrl-C reaching the whole
 * process group): the printed URLs work from another client, and SIGINT or SIGTERM sent to npm alone stops
 * every process they started — nothing is left in their process group.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { afterAll, describe, expect, it } from 'vitest'
import { freePort } from '../../scripts/stack.ts'
import { sleep } from '../support/stack'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const tmp = mkdtempSync(join(tmpdir(), 'hp-signals-'))
const started: ChildProcess[] = []

afterAll(() => {
  // Only if a test failed half-way: stop what it started, by process group.
  for (const child of started)
    if (child.pid && groupMembers(child.pid).length)
      try {
        process.kill(-child.pid, 'SIGKILL')
      } catch {}
  rmSync(tmp, { recursive: true, force: true })
})

/** PIDs whose process group is `pgid` (read from /proc). */
function groupMembers(pgid: number): number[] {
  const pids: number[] = []
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) pids.push(Number(p))
    } catch {} // exited meanwhile
  }
  return pids
}

/** `npm run <script>` in a process group of its own (as a supervisor or a CI step would start it). */
function npmRun(script: string, env: Record<string, string>) {
  const { DATABASE_URL: _ignored, ...rest } = process.env
  const child = spawn('npm', ['run', '--silent', script], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...rest, ...env },
  })
  started.push(child)
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  const waitFor = async (re: RegExp, ms: number) => {
    const deadline = Date.now() + ms
    while (!re.test(out) && Date.now() < deadline && child.exitCode === null) await sleep(100)
    if (!re.test(out)) throw new Error(`npm run ${script}: no ${re} within ${ms} ms:\n${out}`)
    return out
  }
  return { child, pid: child.pid!, waitFor, output: () => out }
}

/** Sends `signal` to npm only, then waits until its whole process group is gone. */
async function stopWith(pid: number, signal: NodeJS.Signals, ms = 30_000): Promise<number[]> {
  expect(groupMembers(pid).length).toBeGreaterThan(2) // npm, the script, and what it started
  process.kill(pid, signal)
  const deadline = Date.now() + ms
  let left = groupMembers(pid)
  while (left.length && Date.now() < deadline) {
    await sleep(100)
    left = groupMembers(pid)
  }
  return left
}

describe('npm run stack', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    it(`prints URLs another app can use, writes them to an env file, and stops on ${signal}`, async () => {
      const envFile = join(tmp, `stack-${signal}.env`)
      const run = npmRun('stack', { STACK_ENV_FILE: envFile })
      const out = await run.waitFor(/written to /, 60_000)
      const url = /^DATABASE_URL=(.+)$/m.exec(out)?.[1]
      expect(url).toMatch(/^postgres:\/\/app:[^@*]+@127\.0\.0\.1:\d+\/app$/)
      expect(readFileSync(envFile, 'utf8')).toContain(`DATABASE_URL=${url}\n`)
      // Usable as printed, through the stack's PgBouncer.
      const sql = postgres(url!, { max: 1, prepare: false, onnotice: () => {} })
      try {
        expect(await sql`select current_user as u`).toEqual([{ u: 'app' }])
      } finally {
        await sql.end({ timeout: 1 })
      }
      expect(await stopWith(run.pid, signal)).toEqual([])
      expect(existsSync(envFile)).toBe(false)
    }, 120_000)
})

describe('npm run dev', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    it(`serves the example, then stops wrangler, workerd and the stack on ${signal}`, async () => {
      const port = await freePort()
      const run = npmRun('dev', { PORT: String(port) })
      await run.waitFor(/Ready on http/, 120_000)
      const res = await fetch(`http://127.0.0.1:${port}/now`)
      expect(res.status).toBe(200)
      expect(await res.json()).toEqual({ now: expect.any(String) })
      expect(await stopWith(run.pid, signal)).toEqual([])
      const refused = await fetch(`http://127.0.0.1:${port}/`).then(
        () => false,
        () => true,
      )
      expect(refused).toBe(true)
    }, 180_000)
})
