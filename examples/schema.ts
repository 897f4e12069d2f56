/**
 * Applies examples/schema.sql (idempotent). Used by `npm run dev` and the runtime tests; Node runs this
 * file directly (type stripping), so it keeps to erasable syntax and explicit `.ts` extensions.
 */
import { readFileSync } from 'node:fs'
import postgres from 'postgres'

export const schemaSql: string = readFileSync(new URL('./schema.sql', import.meta.url), 'utf8')

/**
 * Runs the schema in one transaction, serialised by an advisory lock (concurrent `create … if not exists`
 * can otherwise collide). Works through the direct URL or a transaction-mode pooler (one transaction,
 * simple protocol, no prepared statements).
 */
export async function applySchema(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, prepare: false, onnotice: () => {}, connect_timeout: 10 })
  try {
    await sql.begin(async (tx) => {
      await tx.unsafe('select pg_advisory_xact_lock(7318274)')
      await tx.unsafe(schemaSql)
    })
  } finally {
    await sql.end({ timeout: 2 })
  }
}
