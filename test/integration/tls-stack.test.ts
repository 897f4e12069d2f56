/** The stack's TLS: PgBouncer and Postgres accept TLS with the throwaway CA, and plain clients still work. */
import { readFileSync } from 'node:fs'
import postgres from 'postgres'
import { describe, expect, it } from 'vitest'
import { stack } from '../support/stack.ts'

const opts = { max: 1, prepare: false, fetch_types: false, onnotice: () => {} } as const

async function sslInUse(url: string, ssl: postgres.Options<{}>['ssl']): Promise<boolean> {
  const sql = postgres(url, { ...opts, ssl })
  try {
    // Direct Postgres only: through PgBouncer pg_stat_ssl would describe the server connection.
    const [row] = await sql`select ssl from pg_stat_ssl where pid = pg_backend_pid()`
    return row?.ssl === true
  } finally {
    await sql.end({ timeout: 1 })
  }
}

describe('stack TLS', () => {
  it('exposes a CA file and verify-full URLs', () => {
    expect(readFileSync(stack.caFile, 'utf8')).toContain('BEGIN CERTIFICATE')
    expect(new URL(stack.tlsUrl).searchParams.get('sslmode')).toBe('verify-full')
    expect(new URL(stack.directTlsUrl).searchParams.get('sslmode')).toBe('verify-full')
  })

  it('Postgres: verify-full with the CA is TLS; plain stays plain', async () => {
    const ca = readFileSync(stack.caFile, 'utf8')
    expect(await sslInUse(stack.directTlsUrl, { ca })).toBe(true)
    expect(await sslInUse(stack.directUrl, false)).toBe(false)
  })

  it('PgBouncer: verify-full with the CA connects over TLS (SHOW CLIENTS), without the CA it is refused', async () => {
    const ca = readFileSync(stack.caFile, 'utf8')
    const sql = postgres(stack.tlsUrl, {
      ...opts,
      ssl: { ca },
      connection: { application_name: 'tls-stack' },
    })
    const admin = postgres(stack.adminUrl, { ...opts })
    try {
      expect((await sql`select 1 as x`)[0]?.x).toBe(1)
      const clients = (await admin.unsafe('show clients').simple()) as unknown as Record<string, string>[]
      const mine = clients.filter((c) => c.application_name === 'tls-stack')
      expect(mine.length).toBe(1)
      expect(mine[0]?.tls).toMatch(/^TLSv1\.[23]/)
    } finally {
      await sql.end({ timeout: 1 })
      await admin.end({ timeout: 1 })
    }
    const untrusted = postgres(stack.tlsUrl, { ...opts })
    await expect(untrusted`select 1`).rejects.toThrow(/self[- ]signed/)
    await untrusted.end({ timeout: 1 })
  })
})
