import { Hono } from 'hono'
import { describe, expect, it } from 'vitest'
import { classifyUrl, type PoolerError, pooler } from '../../src'
import { clientConfig, parseOptions } from '../../src/internal'

const HD = 'postgresql://app:Pw-secret@3f8e1c2a9b7d4e6f.hyperdrive.local:5432/app'

describe('Cloudflare Hyperdrive', () => {
  it('classifyUrl recognises *.hyperdrive.local as a transaction-mode Hyperdrive', () => {
    expect(classifyUrl(HD)).toMatchObject({
      mode: 'transaction',
      provider: 'hyperdrive',
      host: '3f8e1c2a9b7d4e6f.hyperdrive.local',
      port: 5432,
      database: 'app',
      user: 'app',
    })
    expect(JSON.stringify(classifyUrl(HD))).not.toContain('Pw-secret')
    expect(classifyUrl('postgres://u:p@hyperdrive.local.example.com/db').provider).toBe('other')
  })

  it('the preset: prepared statements on, no inlining, the guard on (from the host)', () => {
    const config = clientConfig(HD, parseOptions())
    expect(config).toMatchObject({ mode: 'transaction', hyperdrive: true, guard: 'error', inline: false })
    expect(config.driver).toMatchObject({ prepare: true, fetch_types: false })
  })

  it('the preset whatever the host when the hyperdrive option is set; prepare: true is not refused', () => {
    const local = 'postgres://app:pw@127.0.0.1:5433/app'
    const plain = clientConfig(local, parseOptions())
    expect(plain.hyperdrive).toBe(false)
    expect(plain.driver.prepare).toBe(false)
    const config = clientConfig(local, parseOptions({ hyperdrive: 'HYPERDRIVE', prepare: true }))
    expect(config).toMatchObject({ mode: 'transaction', hyperdrive: true, guard: 'error', inline: false })
    expect(config.driver.prepare).toBe(true)
    // Options still win over the preset.
    const off = clientConfig(local, parseOptions({ hyperdrive: 'HYPERDRIVE', prepare: false, guard: 'warn' }))
    expect(off.driver.prepare).toBe(false)
    expect(off.guard).toBe('warn')
  })

  it('hyperdrive excludes url and binding; the name is validated', () => {
    for (const bad of [
      { hyperdrive: 'HYPERDRIVE', url: HD },
      { hyperdrive: 'HYPERDRIVE', binding: 'DB' },
      { hyperdrive: 'not a name' },
    ])
      expect(() => parseOptions(bad)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }))
  })

  it('reads c.env[binding].connectionString; MISSING_DATABASE_URL names the binding when absent', async () => {
    const app = new Hono()
    let err: PoolerError | undefined
    app.use(pooler({ hyperdrive: 'MY_HD' }))
    app.get('/', (c) => c.json({ mode: classifyUrl(HD).mode }))
    app.onError((e, c) => {
      err = e as PoolerError
      return c.text('no', 500)
    })
    expect((await app.request('/', {}, { MY_HD: { connectionString: HD } })).status).toBe(200)
    expect(err).toBeUndefined()
    expect((await app.request('/', {}, { DATABASE_URL: HD })).status).toBe(500)
    expect(err?.code).toBe('MISSING_DATABASE_URL')
    expect(err?.message).toContain('[[hyperdrive]] binding = "MY_HD"')
  })
})

describe('the Hyperdrive preset refuses NOTIFY', () => {
  const q = (text: string) => ({ tagged: false, strings: [text], args: [] })
  it('NOTIFY and pg_notify(…) at level error; nothing else', async () => {
    const { hyperdriveGuard } = await import('../../src/guard/hyperdrive-notify')
    for (const text of [
      'notify jobs',
      "NOTIFY jobs, 'x'",
      'select 1; notify jobs',
      'select pg_notify($1, $2)',
    ])
      expect(hyperdriveGuard(q(text), 'error')).toMatchObject({
        code: 'UNSAFE_IN_TRANSACTION_MODE',
        rule: 'hyperdrive-notify',
      })
    for (const text of [
      "select 'notify jobs'",
      'select pg_notify_count from t',
      'select 1 -- notify jobs',
      'select "pg_notify" from t',
    ])
      expect(hyperdriveGuard(q(text), 'error')).toBeUndefined()
    expect(hyperdriveGuard(q('notify jobs'), 'off')).toBeUndefined()
  })
})
