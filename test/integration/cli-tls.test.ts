/**
 * `hono-pooler doctor`'s tls check: against a self-signed pooler (a TLS front made in the test for the
 * stack's PgBouncer) verify-full fails and says why and require encrypts without verifying (warn); the
 * stack's own CA-signed TLS verifies once the CA is trusted (NODE_EXTRA_CA_CERTS), and the login goes
 * through TLS; a pooler without TLS fails sslmode=require.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { buildCli, check, type Report, runCli } from '../support/cli'
import { stack } from '../support/stack'
import { startTlsFront, type TlsFront } from '../support/tls-front'

let cli: Awaited<ReturnType<typeof buildCli>>
let front: TlsFront

const tlsUrl = (sslmode: string) => {
  const u = new URL(stack.databaseUrl)
  u.port = String(front.port)
  u.searchParams.set('sslmode', sslmode)
  return u.toString()
}

beforeAll(async () => {
  cli = await buildCli()
  front = await startTlsFront(new URL(stack.databaseUrl))
}, 120_000)

afterAll(async () => {
  await front?.stop()
  cli?.remove()
})

describe('hono-pooler doctor: tls', () => {
  it('sslmode=verify-full against a self-signed certificate: tls fails with the reason, exit 1', async () => {
    const r = await runCli(cli.path, ['doctor', '--json', '--timeout', '60', tlsUrl('verify-full')])
    expect(r.code).toBe(1)
    const report = JSON.parse(r.stdout) as Report
    expect(check(report, 'url').message).toContain('TLS verify-full')
    const tls = check(report, 'tls')
    expect(tls.status).toBe('fail')
    expect(tls.message).toMatch(/TLSv1\.[23]/)
    expect(tls.message).toContain('SELF_SIGNED')
    expect(tls.fix).toMatch(/NODE_EXTRA_CA_CERTS/)
    expect(check(report, 'auth').status).toBe('skip')
    expect(r.stdout + r.stderr).not.toContain(stack.password)
  })

  it('sslmode=require: encrypted but not verified (warn), and the login works through TLS', async () => {
    const before = front.handshakes()
    const r = await runCli(cli.path, ['doctor', '--json', '--timeout', '60', tlsUrl('require')])
    const report = JSON.parse(r.stdout) as Report
    expect(check(report, 'tls')).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(
        /^encrypted \(TLSv1\.[23], certificate for 127\.0\.0\.1 .*not verified \(DEPTH_ZERO_SELF_SIGNED_CERT\)/,
      ),
      fix: expect.stringMatching(/verify-full/),
    })
    expect(check(report, 'auth').status).toBe('ok')
    expect(check(report, 'query').status).toBe('ok')
    expect(r.code).toBe(0) // warnings do not fail the run
    // The front forwards nothing before a TLS handshake: the login went through TLS.
    expect(front.handshakes() - before).toBeGreaterThanOrEqual(1)
  })

  it('the stack’s own TLS (a CA-signed certificate): verify-full without the CA fails, with NODE_EXTRA_CA_CERTS every check passes', async () => {
    const untrusted = await runCli(cli.path, ['doctor', '--json', '--timeout', '60', stack.tlsUrl])
    expect(untrusted.code).toBe(1)
    expect(check(JSON.parse(untrusted.stdout) as Report, 'tls')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(
        /rejects the certificate for localhost .*: (SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE)$/,
      ),
      fix: expect.stringMatching(/NODE_EXTRA_CA_CERTS/),
    })

    const trusted = await runCli(cli.path, ['doctor', '--json', '--timeout', '60', stack.tlsUrl], {
      NODE_EXTRA_CA_CERTS: stack.caFile,
    })
    const report = JSON.parse(trusted.stdout) as Report
    expect(check(report, 'tls')).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(/^negotiated: TLSv1\.[23], certificate for localhost .*verified$/),
    })
    expect(report.checks.filter((c) => c.status !== 'ok').map((c) => c.id)).toEqual(['ipv6']) // skipped: IPv4 host
    expect(trusted.code).toBe(0)
  })

  it('sslmode=require against a pooler without TLS: tls fails', async () => {
    const plain = await startTlsFront(new URL(stack.databaseUrl), { tls: false })
    try {
      const u = new URL(stack.databaseUrl)
      u.port = String(plain.port)
      u.searchParams.set('sslmode', 'require')
      const r = await runCli(cli.path, ['doctor', '--json', '--timeout', '60', u.toString()])
      expect(r.code).toBe(1)
      expect(check(JSON.parse(r.stdout) as Report, 'tls')).toMatchObject({
        status: 'fail',
        message: 'the server does not offer TLS, but the URL asks for sslmode=require',
      })
      // Without sslmode the same pooler is fine on loopback: plain, and the login goes through.
      u.searchParams.delete('sslmode')
      const ok = await runCli(cli.path, ['doctor', '--json', '--timeout', '60', u.toString()])
      const report = JSON.parse(ok.stdout) as Report
      expect(check(report, 'tls')).toMatchObject({
        status: 'ok',
        message: 'not offered by the server and not requested (loopback)',
      })
      expect(check(report, 'auth').status).toBe('ok')
    } finally {
      await plain.stop()
    }
  })
})
