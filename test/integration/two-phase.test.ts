import postgres from 'postgres'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { PoolerVariables } from '../../src'
import { inRequest as request } from '../support/in-request'
import { stack } from '../support/stack'

// Prepared transactions are server-wide, not session state: PREPARE TRANSACTION ends the transaction on
// its server connection, and any other connection (of the same user) can COMMIT or ROLLBACK PREPARED it.
// Everything here goes through PgBouncer's one-connection pool (the stack runs max_prepared_transactions=10).
const APP = 'hp-two-phase'
const raw = () => postgres(stack.pool1Url, { max: 1, prepare: false, fetch_types: false, onnotice: () => {} })

const inRequest = <T>(fn: (sql: PoolerVariables['sql']) => Promise<T>) =>
  request({ url: stack.pool1Url, applicationName: APP }, fn)

const gid = (name: string) => `hp-2pc-${process.pid}-${name}`
const prepared = async (id: string): Promise<number> => {
  const sql = raw()
  try {
    return (await sql`select count(*)::int as n from pg_prepared_xacts where gid = ${id}`)[0]?.n
  } finally {
    await sql.end()
  }
}

beforeAll(async () => {
  const sql = raw()
  await sql`create table if not exists two_phase_notes (id text primary key)`
  await sql.end()
})

afterAll(async () => {
  const sql = raw()
  const left = await sql`select gid from pg_prepared_xacts where gid like ${`hp-2pc-${process.pid}-%`}`
  for (const { gid: g } of left) await sql.unsafe(`rollback prepared '${g}'`)
  await sql.end()
})

describe('two-phase commit through a transaction-mode pooler', () => {
  it('tx.prepare() is not refused: the transaction is prepared, then committed from another client', async () => {
    const id = gid('commit')
    const { error } = await inRequest((sql) =>
      sql.begin(async (tx) => {
        await tx`insert into two_phase_notes (id) values (${id})`
        tx.prepare(id)
      }),
    )
    expect(error).toBeUndefined()
    expect(await prepared(id)).toBe(1)
    const other = raw()
    expect(await other`select count(*)::int as n from two_phase_notes where id = ${id}`).toEqual([{ n: 0 }])
    await other.unsafe(`commit prepared '${id}'`)
    expect(await other`select count(*)::int as n from two_phase_notes where id = ${id}`).toEqual([{ n: 1 }])
    await other.end()
    expect(await prepared(id)).toBe(0)
  })

  it('PREPARE TRANSACTION, COMMIT PREPARED and ROLLBACK PREPARED pass the guard as SQL', async () => {
    const [a, b] = [gid('sql-a'), gid('sql-b')]
    const { error } = await inRequest(async (sql) => {
      await sql.unsafe(`begin; insert into two_phase_notes (id) values ('${a}'); prepare transaction '${a}'`)
      await sql.unsafe(`begin; insert into two_phase_notes (id) values ('${b}'); prepare transaction '${b}'`)
      await sql.unsafe(`commit prepared '${a}'`)
      await sql.unsafe(`ROLLBACK PREPARED '${b}'`)
    })
    expect(error).toBeUndefined()
    const sql = raw()
    const rows = await sql`select id from two_phase_notes where id in (${a}, ${b})`
    await sql.end()
    expect(rows.map((r) => r.id)).toEqual([a])
    expect((await prepared(a)) + (await prepared(b))).toBe(0)
  })
})
