/**
 * `hono-pooler doctor` against the real stack (PgBouncer, transaction mode, SCRAM), run as a child process
 * with plain node: every check id in --json, the one-line output, wrong password, a closed port, a port
 * that accepts and never answers, a host that does not resolve, the IPv6 path over ::1, usage errors —
 * and the password in no line of stdout or stderr.
 */
import { createServer, type Server, type Socket } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildCli, type CliRun, check, type Report, runCli } from '../support/cli'
import { be, clientFirstOf, type FakePg, startFakePg } from '../support/fake-pg'
import { stack } from '../support/stack'

let cli: Awaited<ReturnType<typeof buildCli>>
let silent: Server
let silentPort: number
let closedPort: number
const held: Socket[] = []
const runs: CliRun[] = []

const listen = (server: Server, host = '127.0.0.1') =>
  new Promise<number>((resolve) => server.listen(0, host, () => resolve((server.address() as any).port)))

async function doctor(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  const r = await runCli(cli.path, ['doctor', ...args], env)
  runs.push(r)
  return r
}
const json = (r: CliRun) => JSON.parse(r.stdout) as Report

beforeAll(async () => {
  cli = await buildCli()
  // Accepts every connection and never answers (a black-holed pooler port, as seen from the client).
  silent = createServer((socket) => {
    held.push(socket)
    socket.on('error', () => {})
  })
  silentPort = await listen(silent)
  const s = createServer()
  closedPort = await listen(s)
  await new Promise((r) => s.close(r))
}, 120_000)

afterAll(async () => {
  for (const s of held) s.destroy()
  await new Promise((r) => silent?.close(r))
  cli?.remove()
})

describe('hono-pooler doctor', () => {
  it('a good URL: every check id in --json, in order, all ok (ipv6 skipped: an IPv4 host)', async () => {
    const r = await doctor(['--json', '--probe-pipeline', '--timeout', '60'], {
      DATABASE_URL: stack.databaseUrl,
    })
    expect(r.stderr).toBe('')
    const report = json(r)
    expect(report.checks.map((c) => c.id)).toEqual([
      'url',
      'dns',
      'ipv6',
      'tcp',
      'tls',
      'auth',
      'query',
      'connections',
      'budget',
      'pipeline',
    ])
    const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]))
    expect(status).toEqual({
      url: 'ok',
      dns: 'ok',
      ipv6: 'skip',
      tcp: 'ok',
      tls: 'ok',
      auth: 'ok',
      query: 'ok',
      connections: 'ok',
      budget: 'ok',
      pipeline: 'ok',
    })
    expect(r.code).toBe(0)
    expect(report.url).toBe(stack.databaseUrl.replace(stack.password, '***'))
    expect(check(report, 'url').message).toMatch(/^transaction mode/)
    // The stack's PgBouncer offers TLS (client_tls_sslmode = allow); a loopback URL without sslmode does not use it.
    expect(check(report, 'tls').message).toMatch(
      /^the server offers TLS \(TLSv1\.[23], .*\); not used on loopback$/,
    )
    expect(check(report, 'query').ms).toBeGreaterThan(0)
    // The server is the stack's Postgres (max_connections=40), and the doctor's own connection is in it.
    expect(report.server?.maxConnections).toBe(40)
    expect(JSON.stringify(report.server?.groups)).toContain('hono-pooler-doctor')
    expect(report.budget).toMatchObject({ fraction: 0.8, poolSize: 32, perInstance: 32, overBudget: false })
    // PgBouncer 1.18 accepts the startup message and the SASL initial response in one write.
    expect(check(report, 'pipeline').message).toMatch(/2 round trips instead of 3/)
  })

  it('prints one line per check, ✓ / ! / ✗ / - name — finding, and a summary', async () => {
    const r = await doctor(['--timeout', '60', '--data-api', '--instances', '4', stack.databaseUrl])
    expect(r.code).toBe(0)
    const lines = r.stdout.trimEnd().split('\n')
    expect(lines[0]).toBe(`hono-pooler doctor ${stack.databaseUrl.replace(stack.password, '***')}`)
    const checks = lines.slice(1, -1)
    expect(checks.map((l) => l.split(' ')[1])).toEqual([
      'url',
      'dns',
      'ipv6',
      'tcp',
      'tls',
      'auth',
      'query',
      'connections',
      'budget',
    ])
    for (const l of checks) expect(l).toMatch(/^[✓!✗-] [a-z0-9]+ +— \S/)
    // --data-api: 40 % of 40 = 16, split across 4 instances.
    expect(checks.find((l) => l.includes(' budget '))).toMatch(
      /40 % .* = 16 ÷ 4 instances → pool size 4 per instance/,
    )
    expect(lines.at(-1)).toMatch(/^8 ok, 0 warning\(s\), 0 failed, 1 skipped in /)
  })

  it('wrong password: auth fails with AUTH_FAILED, exit 1, and the later checks are skipped', async () => {
    const bad = stack.databaseUrl.replace(stack.password, 'not-the-password')
    const r = await doctor(['--json', bad])
    expect(r.code).toBe(1)
    const report = json(r)
    expect(check(report, 'tcp').status).toBe('ok')
    expect(check(report, 'auth')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/^AUTH_FAILED/),
    })
    expect(check(report, 'auth').fix).toMatch(/user and password/)
    expect(check(report, 'query').status).toBe('skip')
    expect(check(report, 'budget').status).toBe('skip')
    expect(r.stdout).not.toContain('not-the-password')
  })

  it('a closed port: tcp fails with ECONNREFUSED and says what to check', async () => {
    const r = await doctor(['--json', `postgres://app:${stack.password}@127.0.0.1:${closedPort}/app`])
    expect(r.code).toBe(1)
    const tcp = check(json(r), 'tcp')
    expect(tcp.status).toBe('fail')
    expect(tcp.message).toContain('ECONNREFUSED')
    expect(tcp.fix).toMatch(/port/)
    expect(check(json(r), 'auth').status).toBe('skip')
  })

  it('a port that accepts and never answers: tls fails within --timeout, never hangs', async () => {
    const r = await doctor([
      '--timeout',
      '2',
      '--json',
      `postgres://app:${stack.password}@127.0.0.1:${silentPort}/app`,
    ])
    expect(r.code).toBe(1)
    const report = json(r)
    expect(check(report, 'tcp').status).toBe('ok')
    expect(check(report, 'tls')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/did not answer the SSLRequest/),
    })
    expect(check(report, 'auth').status).toBe('skip')
    // Bounded by --timeout 2 (plus node's start-up): generous for a loaded machine, far below a hang.
    expect(r.ms).toBeLessThan(20_000)
  })

  it('a host that does not resolve: dns fails, nothing after it runs, no crash', async () => {
    const r = await doctor([
      '--json',
      '--timeout',
      '20',
      `postgres://app:${stack.password}@no-such-host.invalid:6543/app`,
    ])
    expect(r.code).toBe(1)
    expect(r.stderr).toBe('')
    const report = json(r)
    expect(check(report, 'url').status).toBe('ok')
    expect(check(report, 'dns')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/does not resolve|no DNS answer/),
    })
    for (const id of ['ipv6', 'tcp', 'tls', 'auth', 'query', 'connections', 'budget'])
      expect(check(report, id).status).toBe('skip')
  })

  it('an IPv6-literal host ([::1]): the ipv6 check connects for real; on an IPv4-only platform it fails', async () => {
    const ok = await doctor(['--json', '--timeout', '60', stack.databaseUrl6])
    const report = json(ok)
    expect(check(report, 'dns').message).toMatch(/::1 is an IPv6 address/)
    expect(check(report, 'ipv6')).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(/reaches \[::1\]:\d+ over IPv6/),
    })
    expect(check(report, 'tcp').message).toMatch(/^IPv6 \[::1\]/)
    expect(check(report, 'auth').status).toBe('ok')
    expect(ok.code).toBe(0)

    const vercel = await doctor(['--json', '--timeout', '60', '--platform', 'vercel', stack.databaseUrl6])
    expect(vercel.code).toBe(1)
    expect(check(json(vercel), 'ipv6')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/vercel has IPv4 egress only/),
    })
  })

  it('a URL parameter the pooler would reject: url fails with the fix; the network checks still run', async () => {
    const r = await doctor(['--json', '--timeout', '30', `${stack.databaseUrl}?pgbouncer=true`])
    expect(r.code).toBe(1)
    const report = json(r)
    expect(check(report, 'url')).toMatchObject({ status: 'fail', fix: expect.stringMatching(/remove it/) })
    expect(check(report, 'tcp').status).toBe('ok')
    expect(check(report, 'auth').status).toBe('skip')
  })

  it('usage errors exit 2 without echoing the URL; --help exits 0', async () => {
    const noUrl = await doctor([])
    expect(noUrl.code).toBe(2)
    expect(noUrl.stderr).toMatch(/no URL: pass it as an argument or set DATABASE_URL/)
    const badPlatform = await doctor(['--platform', 'mars', stack.databaseUrl])
    expect(badPlatform.code).toBe(2)
    expect(badPlatform.stderr).toMatch(/--platform must be one of/)
    const unknown = await runCli(cli.path, ['frobnicate', stack.databaseUrl])
    runs.push(unknown)
    expect(unknown.code).toBe(2)
    const help = await runCli(cli.path, ['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/hono-pooler doctor \[URL\]/)
  })

  it('never prints the password, in any run above', () => {
    expect(runs.length).toBeGreaterThanOrEqual(10)
    for (const r of runs) {
      expect(r.stdout).not.toContain(stack.password)
      expect(r.stderr).not.toContain(stack.password)
    }
  })

  it('a server that ends the login without proving it knows the password: auth fails, the pipeline probe never reports ok', async () => {
    let fake: FakePg | undefined
    try {
      fake = await startFakePg(async (c) => {
        c.send(be.authSasl('SCRAM-SHA-256'))
        const first = await c.next()
        const nonce = clientFirstOf(first).split('r=')[1]
        c.send(
          be.saslContinue(
            `r=${nonce}IMPOSTOR,s=${Buffer.from('0123456789abcdef').toString('base64')},i=4096`,
          ),
        )
        await c.next() // the client-final message: answered with a login OK, never a SASLFinal
        c.send(be.authOk(), be.keyData(), be.ready())
        for (;;) if ((await c.next()).type === 'X') return
      })
      const r = await doctor(['--json', '--probe-pipeline', '--timeout', '20'], { DATABASE_URL: fake.url() })
      const report = json(r)
      expect(check(report, 'auth').status).toBe('fail')
      expect(check(report, 'auth').message).toMatch(/AUTH_FAILED|password|signature/i)
      expect(check(report, 'pipeline').status).not.toBe('ok')
      expect(r.code).toBe(1)
    } finally {
      await fake?.close()
    }
  })
})
