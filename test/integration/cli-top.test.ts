/**
 * `hono-pooler top`: `--once` shows this test's own connections under their application_name and
 * PgBouncer's SHOW POOLS; on a pipe it prints plain frames until SIGINT; in a real terminal (a tmux
 * server of this test's own, on its own socket) it draws full screen and Ctrl-C restores the terminal.
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildCli, runCli } from '../support/cli'
import { sleep, stack } from '../support/stack'

const APP = `hp-top-${process.pid}`
let cli: Awaited<ReturnType<typeof buildCli>>
const holders = [0, 1].map(() =>
  postgres(stack.directUrl, { max: 1, fetch_types: false, connection: { application_name: APP } }),
)

beforeAll(async () => {
  cli = await buildCli()
  await Promise.all(holders.map((sql) => sql`select 1`))
}, 120_000)

afterAll(async () => {
  await Promise.all(holders.map((sql) => sql.end({ timeout: 1 })))
  cli?.remove()
})

const secrets = () => [stack.password, new URL(stack.adminUrl).password]

describe('hono-pooler top', () => {
  it('--once: one frame with this test’s connections by application, user and state, the budget and SHOW POOLS', async () => {
    const r = await runCli(cli.path, ['top', '--once', '--pgbouncer', stack.adminUrl], {
      DATABASE_URL: stack.databaseUrl,
    })
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = r.stdout.split('\n')
    expect(lines[0]).toMatch(/^hono-pooler top app@127\.0\.0\.1:\d+\/app \(transaction\) \d\d:\d\d:\d\d UTC$/)
    expect(lines[1]).toMatch(
      /^connections \d+ \/ 40 \(\d+ %\) · budget 32 \(80 % of max_connections\) · within budget$/,
    )
    const mine = lines.find((l) => l.includes(APP))
    expect(mine).toMatch(new RegExp(`^  ${APP} +app +idle +2$`))
    // top's own connection is one of hono-pooler's clients: marked with *.
    expect(lines.some((l) => /^\* hono-pooler-top +app +active +1$/.test(l))).toBe(true)
    const pools = lines.slice(lines.indexOf('PgBouncer SHOW POOLS'))
    expect(pools[1]).toMatch(/DATABASE +USER +CL_ACTIVE +CL_WAITING +SV_ACTIVE +SV_IDLE +MAXWAIT/)
    expect(pools.some((l) => /^ {2}app +app +\d+ +\d+ +\d+ +\d+ +\d+$/.test(l))).toBe(true)
    for (const s of secrets()) expect(r.stdout).not.toContain(s)
  })

  it('--once against a closed port: exit 1 with the reason in the frame', async () => {
    const r = await runCli(cli.path, ['top', '--once', 'postgres://app:pw-top-canary@127.0.0.1:1/app'])
    expect(r.code).toBe(1)
    expect(r.stdout).toMatch(/pg_stat_activity: .*(ECONNREFUSED|Cannot reach)/)
    expect(r.stdout + r.stderr).not.toContain('pw-top-canary')
  })

  it('on a pipe: plain frames every --interval until SIGINT, then exit 0', async () => {
    const child = spawn(process.execPath, [cli.path, 'top', '--interval', '0.3', stack.databaseUrl], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const deadline = Date.now() + 20_000
    while ((out.match(/^hono-pooler top /gm) ?? []).length < 2 && Date.now() < deadline) await sleep(50)
    const exited = new Promise<number | null>((r) => child.on('close', r))
    child.kill('SIGINT')
    expect(await exited).toBe(0)
    expect((out.match(/^hono-pooler top /gm) ?? []).length).toBeGreaterThanOrEqual(2)
    expect(out).toContain(APP)
    expect(out).not.toContain('\x1b[') // no escape codes on a pipe
  })

  it('Ctrl-C while a refresh waits for a server that never answers: exits at once, not after connectTimeout', async () => {
    const held: Socket[] = []
    const silent = createServer((socket) => {
      held.push(socket)
      socket.on('error', () => {})
    })
    const port = await new Promise<number>((r) =>
      silent.listen(0, '127.0.0.1', () => r((silent.address() as AddressInfo).port)),
    )
    try {
      const child = spawn(process.execPath, [cli.path, 'top', `postgres://u:pw@127.0.0.1:${port}/db`], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      const exited = new Promise<number | null>((r) => child.on('close', r))
      // Wait until top is connecting (its signal handlers are installed by then), then a little longer.
      const deadline = Date.now() + 20_000
      while (!held.length && Date.now() < deadline) await sleep(25)
      expect(held.length).toBeGreaterThan(0)
      await sleep(300)
      const signalled = Date.now()
      child.kill('SIGINT')
      expect(await exited).toBe(0)
      // The refresh would wait 10 s (connectTimeout); Ctrl-C gives it 1.5 s. Generous for a loaded machine.
      expect(Date.now() - signalled).toBeLessThan(8000)
    } finally {
      for (const socket of held) socket.destroy()
      await new Promise((r) => silent.close(r))
    }
  })

  it('in a real terminal (tmux): full screen while it runs, Ctrl-C restores the terminal', async () => {
    // A tmux server of our own on a socket in our own temp dir: nobody else's session, nothing left behind.
    const dir = mkdtempSync(join(tmpdir(), 'hp-top-tmux-'))
    const socket = join(dir, 'sock')
    const tmux = (...args: string[]) => execFileSync('tmux', ['-S', socket, ...args], { encoding: 'utf8' })
    const screen = () => tmux('capture-pane', '-p', '-t', 'top')
    const flags = () => tmux('display-message', '-p', '-t', 'top', '#{alternate_on} #{cursor_flag}').trim()
    const waitFor = async (test: (s: string) => boolean) => {
      const deadline = Date.now() + 20_000
      let s = screen()
      while (!test(s) && Date.now() < deadline) {
        await sleep(100)
        s = screen()
      }
      return s
    }
    tmux(
      'new-session',
      '-d',
      '-s',
      'top',
      '-x',
      '120',
      '-y',
      '40',
      '-e',
      `DATABASE_URL=${stack.databaseUrl}`,
      '-e',
      `PGBOUNCER_ADMIN_URL=${stack.adminUrl}`,
      'sh',
    )
    try {
      expect(flags()).toBe('0 1')
      await waitFor((s) => /[#$] ?$/m.test(s)) // the shell's prompt: typing before it would race the echo
      tmux(
        'send-keys',
        '-t',
        'top',
        `${process.execPath} ${cli.path} top --interval 0.5; echo "top-exit:$?"`,
        'Enter',
      )
      const running = await waitFor((s) => s.includes(APP) && s.includes('CL_ACTIVE'))
      expect(running).toMatch(/^hono-pooler top app@127\.0\.0\.1:\d+\/app \(transaction\) .* Ctrl-C quits/m)
      expect(running).toContain(APP)
      expect(running).toContain('PgBouncer SHOW POOLS')
      expect(flags()).toBe('1 0') // alternate screen on, cursor hidden
      for (const s of secrets()) expect(running).not.toContain(s)

      tmux('send-keys', '-t', 'top', 'C-c')
      const after = await waitFor((s) => /top-exit:\d/.test(s))
      expect(after).toMatch(/(^|\s)top-exit:0$/m)
      expect(flags()).toBe('0 1') // back on the normal screen, cursor visible
      expect(after).not.toContain('CL_ACTIVE') // the frame was on the alternate screen only
    } finally {
      tmux('kill-server')
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
