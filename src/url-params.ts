/**
 * Query parameters of the connection string. postgres.js forwards every parameter it does not read itself
 * to the server as a startup parameter, and PgBouncer/Supavisor reject unknown ones
 * (`unsupported startup parameter`) — so those are refused before connecting, Prisma's by name.
 */
import { PoolerError } from './errors'

/** Query parameters postgres.js reads itself (not forwarded as startup parameters). */
const DRIVER_PARAMS = new Set([
  'sslmode',
  'ssl',
  'sslnegotiation',
  'connect_timeout',
  'idle_timeout',
  'max_lifetime',
  'keep_alive',
  'target_session_attrs',
  'max',
  'fetch_types',
  'prepare',
  'backoff',
  'max_pipeline',
  'publications',
  'debug',
])
/** Startup parameters PgBouncer and Supavisor accept. */
const STARTUP_PARAMS = new Set([
  'application_name',
  'client_encoding',
  'datestyle',
  'timezone',
  'standard_conforming_strings',
])
const PRISMA_PARAMS: Record<string, string> = {
  pgbouncer: 'a Prisma flag; hono-pooler already applies the transaction-mode preset',
  connection_limit: 'a Prisma option; use pooler({ max })',
  pool_timeout: 'a Prisma option; use pooler({ connectTimeout })',
  statement_cache_size: 'a Prisma option; hono-pooler never prepares named statements in transaction mode',
  schema: 'a Prisma option; use withSettings(sql, { search_path }, fn) or schema-qualified names',
  socket_timeout: 'a Prisma option; use pooler({ connectTimeout })',
}

/**
 * Throws `UNSUPPORTED_URL_PARAM` for a parameter the pooler would reject.
 *
 * @example
 * checkUrlParams(new URL('postgres://u:pw@h:6543/db?pgbouncer=true')) // throws: a Prisma flag …
 */
export function checkUrlParams(url: URL): void {
  for (const key of url.searchParams.keys()) {
    const k = key.toLowerCase()
    if (k in PRISMA_PARAMS)
      throw new PoolerError(
        'UNSUPPORTED_URL_PARAM',
        `URL parameter "${key}" is ${PRISMA_PARAMS[k]} — remove it from the URL (PgBouncer rejects unknown startup parameters)`,
      )
    if (!DRIVER_PARAMS.has(k) && !STARTUP_PARAMS.has(k))
      throw new PoolerError(
        'UNSUPPORTED_URL_PARAM',
        `URL parameter "${key}" would be sent to the pooler as a startup parameter, which PgBouncer/Supavisor reject ("unsupported startup parameter") — remove it from the URL`,
      )
  }
}
