/**
 * `hono-pooler doctor`'s tls check against a self-signed pooler (a TLS front made in the test for the
 * stack's PgBouncer): verify-full fails and says why, require encrypts without verifying (warn), and with
 * the certificate trusted (NODE_EXTRA_CA_CERTS) verify-full passes and the login goes through TLS.
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

  it('verify-full with the certificate trusted (NODE_EXTRA_CA_CERTS): the tls check verifies it', async () => {
    const r = await runCli(cli.path, ['doctor', '--json', '--timeout', '60', tlsUrl('verify-full')], {
      NODE_EXTRA_CA_CERTS: front.certFile,
    })
    const report = JSON.parse(r.stdout) as Report
    expect(check(report, 'tls')).toMatchObject({
      status: 'ok',
      message: expect.stringMatching(/^negotiated: TLSv1\.[23], certificate for 127\.0\.0\.1 .*verified$/),
    })
    // (The login itself then fails: postgres.js checks an IP-literal host's certificate against
    // "localhost" — reported by the auth check as ERR_TLS_CERT_ALTNAME_INVALID, as the app would see it.)
    expect(check(report, 'auth').status).not.toBe('skip')
  })

  it('sslmode=require against a server without TLS: tls fails', async () => {
    const u = new URL(stack.databaseUrl)
    u.searchParams.set('sslmode', 'require')
    const r = await runCli(cli.path, ['doctor', '--json', '--timeout', '60', u.toString()])
    expect(r.code).toBe(1)
    expect(check(JSON.parse(r.stdout) as Report, 'tls')).toMatchObject({
      status: 'fail',
      message: 'the server does not offer TLS, but the URL asks for sslmode=require',
    })
  })
})
