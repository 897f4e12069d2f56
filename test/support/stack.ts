import postgres from 'postgres'
import { inject } from 'vitest'
import { bouncerAdmin } from '../../scripts/stack.ts'

export const stack = inject('stack')

export interface ClientRow {
  user: string
  database: string
  state: string
  application_name: string
}

/** PgBouncer's SHOW CLIENTS (admin console: simple protocol only), without the admin's own connection. */
export async function showClients(applicationName?: string): Promise<ClientRow[]> {
  const rows = await bouncerAdmin<ClientRow>(stack.adminUrl, 'show clients')
  return rows.filter(
    (r) =>
      r.database !== 'pgbouncer' && (applicationName === undefined || r.application_name === applicationName),
  )
}

/** Waits until PgBouncer lists no client with this application_name; returns what was last seen. */
export async function waitForNoClients(applicationName: string, ms = 6000): Promise<ClientRow[]> {
  const deadline = Date.now() + ms
  let rows = await showClients(applicationName)
  while (rows.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50))
    rows = await showClients(applicationName)
  }
  return rows
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/**
 * Runs `fn` while another client (straight to Postgres) holds an ACCESS EXCLUSIVE lock on `table` for `ms`:
 * a statement on that table waits, which makes the pipelining hang of a transaction pooler deterministic.
 */
export async function whileLocked<T>(table: string, ms: number, fn: () => Promise<T>): Promise<T> {
  const locker = postgres(stack.directUrl, { max: 1, onnotice: () => {} })
  await locker.unsafe(`create table if not exists ${table} (id int)`)
  let locked!: () => void
  const isLocked = new Promise<void>((r) => (locked = r))
  const held = locker.begin(async (tx) => {
    await tx.unsafe(`lock table ${table} in access exclusive mode`)
    locked()
    await sleep(ms)
  })
  await isLocked
  try {
    return await fn()
  } finally {
    await held
    await locker.end()
  }
}
