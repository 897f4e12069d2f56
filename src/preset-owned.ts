/**
 * postgres.js options the preset sets itself, with the `pooler()` option that controls each: given in
 * `postgres: {…}` they would be silently overridden, so they are refused instead.
 */
export const PRESET_OWNED: Readonly<Record<string, string>> = {
  max: 'max',
  connect_timeout: 'connectTimeout',
  idle_timeout: 'idleTimeout',
  max_lifetime: 'idleTimeout (a request client lives as long as its request)',
  prepare: 'prepare',
  ssl: 'ssl',
  'connection.application_name': 'applicationName',
  host: 'url (put the host in the connection string)',
  hostname: 'url (put the host in the connection string)',
  port: 'url (put the port in the connection string)',
  database: 'url (put the database in the connection string)',
  db: 'url (put the database in the connection string)',
  user: 'url (put the user in the connection string)',
  username: 'url (put the user in the connection string)',
  pass: 'url (put the password in the connection string)',
  password: 'url (put the password in the connection string)',
  path: 'url (a Unix socket path bypasses the pooler the mode was read from)',
  target_session_attrs: 'url (one host per URL: poolers fail over on their side)',
}

/** The first preset-owned key set in `driver` (`connection.x` for connection parameters), else undefined. */
export function presetOwned(driver: Record<string, unknown> | undefined): string | undefined {
  if (!driver) return undefined
  const connection = driver.connection
  const record = connection && typeof connection === 'object' ? (connection as Record<string, unknown>) : {}
  for (const key of Object.keys(PRESET_OWNED)) {
    const [a, b] = key.split('.') as [string, string | undefined]
    if ((b ? record[b] : driver[a]) !== undefined) return key // a key set to undefined changes nothing
  }
  return undefined
}
