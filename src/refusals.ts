/**
 * The errors for what a transaction-mode pooler cannot do at the driver level (the SQL-level ones come
 * from the guard), and for using a request's client outside its request.
 */
import { PoolerError } from './errors'

/**
 * @example
 * if (opts.prepare === true) throw prepareUnsupported()
 */
export const prepareUnsupported = (): PoolerError =>
  new PoolerError(
    'PREPARE_UNSUPPORTED',
    'Named prepared statements do not work behind a transaction-mode pooler (prepared statement "…" does not exist) — drop prepare: true',
  )

/**
 * @example
 * if (closed) throw clientClosed()
 */
export const clientClosed = (): PoolerError =>
  new PoolerError(
    'CLIENT_CLOSED',
    'This request is over and its database client is closed — use c.var.sql only while the request runs',
  )

/**
 * @example
 * if (insideOwnTransaction && max === 1) throw deadlockInTransaction()
 */
export const deadlockInTransaction = (): PoolerError =>
  new PoolerError(
    'DEADLOCK_IN_TRANSACTION',
    "c.var.sql was used inside its own sql.begin() callback: the transaction holds the only connection (max: 1), so it would wait forever — use the callback's tx",
  )

/**
 * `tx.prepare(name)`: two-phase commit, refused like SQL `PREPARE TRANSACTION` (guard rule `sql-prepare`).
 *
 * @example
 * overrides.prepare = () => { throw twoPhaseCommit() }
 */
export const twoPhaseCommit = (): PoolerError =>
  new PoolerError(
    'UNSAFE_IN_TRANSACTION_MODE',
    'PREPARE TRANSACTION (two-phase commit) leaves the transaction on a server connection you will not get back — commit normally',
    { rule: 'sql-prepare', fix: 'commit normally; two-phase commit needs a direct connection' },
  )

const rejectWith =
  (code: 'LISTEN_UNSUPPORTED' | 'SUBSCRIBE_UNSUPPORTED' | 'RESERVE_UNSUPPORTED', message: string) =>
  async (): Promise<never> => {
    throw new PoolerError(code, message)
  }

/**
 * Replacements for the postgres.js methods that need a session of their own.
 *
 * @example
 * Object.assign(overrides, SESSION_ONLY_METHODS) // in transaction mode
 */
export const SESSION_ONLY_METHODS = {
  listen: rejectWith(
    'LISTEN_UNSUPPORTED',
    'LISTEN does not work behind a transaction-mode pooler: notifications never arrive — listen on a session-mode or direct connection, or use Supabase Realtime',
  ),
  subscribe: rejectWith(
    'SUBSCRIBE_UNSUPPORTED',
    'sql.subscribe() needs logical replication, which a transaction-mode pooler cannot carry — subscribe over a direct connection',
  ),
  reserve: rejectWith(
    'RESERVE_UNSUPPORTED',
    'sql.reserve() does not pin a server connection behind a transaction-mode pooler — use sql.begin() to keep statements on one connection',
  ),
}
