/**
 * The local transaction-pooler stack: an ephemeral Postgres (from the system binaries) behind a real
 * PgBouncer in `pool_mode = transaction`, both on free loopback ports, SCRAM auth everywhere. PgBouncer
 * and Postgres also accept TLS (`client_tls_sslmode = allow`, `ssl = on`: plain clients keep working) with a
 * throwaway CA and server certificate made at start with `openssl` (CN/SAN localhost, 127.0.0.1, ::1).
 *
 * Used by the vitest globalSetup, `npm run dev`, the benchmarks and `npm run stack` (prints the URLs and
 * keeps the stack up until SIGINT/SIGTERM). When DATABASE_URL is already set, nothing is started and the URLs
 * from the environment are used instead.
 *
 * Node runs this file directly (type stripping): keep to erasable TypeScript syntax.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { createServer, Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import postgres from 'postgres'

export interface Stack {
  /** Through PgBouncer, transaction mode, database alias `app`. */
  databaseUrl: string
  /** The same PgBouncer over IPv6 loopback, `postgres://app:…@[::1]:port/app` (IPv6-literal host). */
  databaseUrl6: string
  /** Through PgBouncer, alias `app_pool1` whose pool has ONE server connection (forces sharing). */
  pool1Url: string
  /** Alias `app_oracle`: also ONE server connection, used only by the guard's observation oracle (no other test disturbs it). */
  oracleUrl: string
  /** Straight to Postgres as the app user (no pooler). */
  directUrl: string
  /** Straight to Postgres as superuser (setup, pg_stat_activity). */
  superUrl: string
  /** PgBouncer admin console (`SHOW CLIENTS`, `SHOW POOLS`): simple query protocol only. */
  adminUrl: string
  /** A PgBouncer with max_client_conn = 2 (saturation tests). Empty when external. */
  tinyUrl: string
  /**
   * The throwaway CA's certificate (PEM file) that signed the server certificate of PgBouncer and Postgres
   * (SAN localhost, 127.0.0.1, ::1). Empty when external unless `PG_CA_FILE` is set.
   */
  caFile: string
  /** `databaseUrl` with `sslmode=verify-full` (verify against `caFile`: pass `ssl: { ca }`). */
  tlsUrl: string
  /** `directUrl` with `sslmode=verify-full`: Postgres itself over TLS. */
  directTlsUrl: string
  /** The app user's password (tests check that it never appears in errors). */
  password: string
  /** True when the URLs came from the environment and nothing was started. */
  external: boolean
  /** Fault tests: kill and restart this stack's own processes (absent when external). */
  control?: StackControl
  stop(): Promise<void>
}

/**
 * Kills and restarts the processes of a stack the caller started itself (fault tests start their own
 * stack: never the shared one other test files use).
 */
export interface StackControl {
  /** Kills the main PgBouncer (`SIGKILL` by default: no goodbye to its clients) and waits for its exit. */
  killBouncer(signal?: NodeJS.Signals): Promise<void>
  /** Starts the main PgBouncer again on the same port; resolves once it listens. */
  startBouncer(): Promise<void>
  /** Stops Postgres (`SIGINT`: fast shutdown, `SIGKILL`: crash) and waits for its exit. */
  stopPostgres(signal?: NodeJS.Signals): Promise<void>
  /** Starts Postgres again on the same port; resolves once it accepts logins. */
  startPostgres(): Promise<void>
}

const INSTALL_HELP = {
  postgres:
    'PostgreSQL server binaries not found. Install them: apt-get update && apt-get install -y postgresql',
  pgbouncer: 'pgbouncer not found. Install it: apt-get update && apt-get install -y pgbouncer',
  openssl: 'openssl not found (the stack makes a throwaway TLS CA). Install it: apt-get install -y openssl',
}

/**
 * A throwaway CA and a server certificate it signed (CN localhost, SAN localhost, 127.0.0.1, ::1), written
 * into `dir`; the key readable only by the service user (Postgres refuses a group/world-readable key).
 */
function makeCertificates(
  dir: string,
  owned: (p: string) => void,
): { ca: string; cert: string; key: string } {
  const ca = join(dir, 'ca.crt')
  const caKey = join(dir, 'ca.key')
  const cert = join(dir, 'server.crt')
  const key = join(dir, 'server.key')
  const csr = join(dir, 'server.csr')
  const ext = join(dir, 'server.ext')
  const ssl = (args: string[]) => {
    try {
      execFileSync('openssl', args, { stdio: 'pipe' })
    } catch (e: any) {
      if (e.code === 'ENOENT') throw new Error(INSTALL_HELP.openssl)
      throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString() || e.message}`)
    }
  }
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  ssl(['req', '-x509', ...ec, '-keyout', caKey, '-out', ca, '-days', '2', '-subj', '/CN=hono-pooler test CA'])
  ssl(['req', ...ec, '-keyout', key, '-out', csr, '-subj', '/CN=localhost'])
  writeFileSync(ext, 'subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1\n')
  ssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    ca,
    '-CAkey',
    caKey,
    '-CAcreateserial',
    '-out',
    cert,
    '-days',
    '2',
    '-extfile',
    ext,
  ])
  chmodSync(key, 0o600)
  for (const f of [ca, cert, key]) owned(f)
  return { ca, cert, key }
}

export function findPgBin(): string {
  const candidates: string[] = []
  try {
    candidates.push(execFileSync('pg_config', ['--bindir'], { encoding: 'utf8' }).trim())
  } catch {}
  for (const v of ['17', '16', '15', '14', '13']) candidates.push(`/usr/lib/postgresql/${v}/bin`)
  for (const dir of candidates)
    if (existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'postgres'))) return dir
  throw new Error(INSTALL_HELP.postgres)
}

function findPgBouncer(): string {
  for (const p of ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'])
    if (existsSync(p)) return p
  try {
    return execFileSync('sh', ['-c', 'command -v pgbouncer'], { encoding: 'utf8' }).trim() || ''
  } catch {
    throw new Error(INSTALL_HELP.pgbouncer)
  }
}

/** Postgres and PgBouncer refuse to run as root: as root, run them as the `postgres` OS user. */
export function serviceUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  try {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
    return { uid, gid }
  } catch {
    throw new Error(
      'Running as root but there is no `postgres` OS user to run the servers as (useradd postgres)',
    )
  }
}

function listenOnce(port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(port, host, () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
}

/** A port free on 127.0.0.1 and, where the machine has IPv6 loopback, on ::1 too (the stack listens on both). */
export async function freePort(): Promise<number> {
  for (let i = 0; ; i++) {
    const port = await listenOnce(0, '127.0.0.1')
    try {
      await listenOnce(port, '::1')
      return port
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EADDRNOTAVAIL' || i > 20) return port // no IPv6 loopback
    }
  }
}

export async function waitForPort(
  port: number,
  child: ChildProcess,
  what: string,
  logFile?: string,
): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const log = logFile && existsSync(logFile) ? readFileSync(logFile, 'utf8').slice(-2000) : ''
      throw new Error(`${what} exited with code ${child.exitCode} before listening on ${port}\n${log}`)
    }
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket()
      const done = (listening: boolean) => {
        s.destroy()
        resolve(listening)
      }
      s.once('connect', () => done(true))
      s.once('error', () => done(false))
      s.connect(port, '127.0.0.1')
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 25))
  }
  throw new Error(`${what} did not listen on 127.0.0.1:${port} within 15 s`)
}

function run(cmd: string, args: string[], user: { uid: number; gid: number } | undefined): void {
  try {
    execFileSync(cmd, args, { stdio: 'pipe', ...(user ?? {}) })
  } catch (e: any) {
    throw new Error(`${cmd} ${args.join(' ')} failed: ${e.stderr?.toString() || e.message}`)
  }
}

/**
 * One command on PgBouncer's admin console (simple protocol only), on a connection of its own; its rows.
 *
 * @example
 * const clients = await bouncerAdmin(stack.adminUrl, 'show clients')
 */
export async function bouncerAdmin<T = Record<string, unknown>>(
  adminUrl: string,
  command: string,
  connectTimeout?: number,
): Promise<T[]> {
  const admin = postgres(adminUrl, {
    max: 1,
    fetch_types: false,
    onnotice: () => {},
    ...(connectTimeout === undefined ? {} : { connect_timeout: connectTimeout }),
  })
  try {
    return (await admin.unsafe(command).simple()) as unknown as T[]
  } finally {
    await admin.end({ timeout: 0 })
  }
}

export function stopChild(child: ChildProcess, signal: NodeJS.Signals): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.kill('SIGKILL'), 5000)
    child.once('exit', () => {
      clearTimeout(kill)
      resolve()
    })
    child.kill(signal)
  })
}

/** The port opens before Postgres accepts logins ("the database system is starting up", 57P03). */
async function acceptsLogins(su: postgres.Sql): Promise<void> {
  for (let i = 0; ; i++) {
    const err = await su`select 1`.then(
      () => undefined,
      (e: { code?: string }) => e,
    )
    if (!err) return
    if (err.code !== '57P03' || i > 300) throw err
    await new Promise((r) => setTimeout(r, 20))
  }
}

/**
 * Starts (or, with DATABASE_URL set, adopts) the stack.
 *
 * @example
 * const stack = await startStack()
 * const sql = postgres(stack.databaseUrl, { prepare: false })
 * await stack.stop()
 */
export async function startStack(
  env: NodeJS.ProcessEnv = process.env,
  /**
   * Extra `[pgbouncer]` settings for the main PgBouncer (fault tests: `server_login_retry = 1`, …), and
   * Postgres's `max_connections` (40: the tests' budget figures rely on it; the bench needs more).
   */
  { bouncerSettings = [], maxConnections = 40 }: { bouncerSettings?: string[]; maxConnections?: number } = {},
): Promise<Stack> {
  if (env.DATABASE_URL) {
    const u = new URL(env.DATABASE_URL)
    return {
      databaseUrl: env.DATABASE_URL,
      databaseUrl6: env.DATABASE_URL_IPV6 ?? '',
      pool1Url: env.DATABASE_URL_POOL1 ?? env.DATABASE_URL,
      oracleUrl: env.DATABASE_URL_ORACLE ?? env.DATABASE_URL_POOL1 ?? env.DATABASE_URL,
      directUrl: env.DIRECT_URL ?? env.DATABASE_URL,
      superUrl: env.SUPER_URL ?? env.DIRECT_URL ?? env.DATABASE_URL,
      adminUrl: env.PGBOUNCER_ADMIN_URL ?? '',
      tinyUrl: env.PGBOUNCER_TINY_URL ?? '',
      caFile: env.PG_CA_FILE ?? '',
      tlsUrl: env.DATABASE_URL_TLS ?? '',
      directTlsUrl: env.DIRECT_URL_TLS ?? '',
      password: decodeURIComponent(u.password),
      external: true,
      stop: async () => {},
    }
  }

  const bin = findPgBin()
  const pgbouncer = findPgBouncer()
  const user = serviceUser()
  const dir = mkdtempSync(join(tmpdir(), 'hono-pooler-stack-'))
  const data = join(dir, 'data')
  const children: ChildProcess[] = []
  const postgresChildren = new Set<ChildProcess>()
  const owned = (p: string) => user && chownSync(p, user.uid, user.gid)
  owned(dir)
  chmodSync(dir, 0o700)

  const superPass = `su-${randomBytes(6).toString('hex')}`
  // Distinctive on purpose: tests assert that it never shows up in an error, a log or a stack.
  const password = `Pw-${randomBytes(9).toString('hex')}-leak-canary`
  const adminPass = `adm-${randomBytes(6).toString('hex')}`
  const pwfile = join(dir, 'pwfile')
  writeFileSync(pwfile, `${superPass}\n`, { mode: 0o600 })
  owned(pwfile)
  const tls = makeCertificates(dir, owned)

  const stop = async () => {
    // Postgres: fast shutdown; PgBouncer: immediate shutdown (its clients are the tests', already done).
    await Promise.all(children.map((c) => stopChild(c, postgresChildren.has(c) ? 'SIGINT' : 'SIGTERM')))
    rmSync(dir, { recursive: true, force: true })
  }

  try {
    run(
      join(bin, 'initdb'),
      [
        '-D',
        data,
        '-U',
        'postgres',
        '--auth=scram-sha-256',
        `--pwfile=${pwfile}`,
        '-E',
        'UTF8',
        '--no-sync',
        '--locale=C',
      ],
      user,
    )
    const pgPort = await freePort()
    writeFileSync(
      join(data, 'pg_hba.conf'),
      'host all all 127.0.0.1/32 scram-sha-256\nhost all all ::1/128 scram-sha-256\n',
    )
    const pgArgs = [
      '-D',
      data,
      '-p',
      String(pgPort),
      '-c',
      'listen_addresses=127.0.0.1,::1',
      '-c',
      `unix_socket_directories=${dir}`,
      '-c',
      `max_connections=${maxConnections}`,
      '-c',
      // Two-phase commit (PREPARE TRANSACTION) through the pooler is tested for real.
      'max_prepared_transactions=10',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'shared_buffers=32MB',
      '-c',
      'logging_collector=off',
      '-c',
      'log_min_messages=fatal',
      '-c',
      'ssl=on',
      '-c',
      `ssl_cert_file=${tls.cert}`,
      '-c',
      `ssl_key_file=${tls.key}`,
    ]
    let pg: ChildProcess
    const spawnPg = async () => {
      pg = spawn(join(bin, 'postgres'), pgArgs, { stdio: ['ignore', 'ignore', 'pipe'], ...(user ?? {}) })
      children.push(pg)
      postgresChildren.add(pg)
      let pgLog = ''
      pg.stderr?.on('data', (d) => (pgLog = (pgLog + d).slice(-4000)))
      await waitForPort(pgPort, pg, 'postgres').catch((e) => {
        throw new Error(`${e.message}\n${pgLog}`)
      })
    }
    await spawnPg()

    const superUrl = `postgres://postgres:${superPass}@127.0.0.1:${pgPort}/postgres`
    const su = postgres(superUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 })
    let secrets: { rolname: string; rolpassword: string }[]
    try {
      await acceptsLogins(su)
      await su.unsafe(`create role app login password '${password}'`)
      await su.unsafe(`create role pgb_admin login password '${adminPass}'`)
      await su.unsafe('create database app owner app')
      secrets = await su`select rolname, rolpassword from pg_authid where rolname in ('app', 'pgb_admin')`
    } finally {
      await su.end({ timeout: 1 })
    }

    const userlist = join(dir, 'userlist.txt')
    writeFileSync(userlist, `${secrets.map((s) => `"${s.rolname}" "${s.rolpassword}"`).join('\n')}\n`, {
      mode: 0o600,
    })
    owned(userlist)
    const bouncers = new Map<string, { child: ChildProcess; respawn: () => Promise<void> }>()
    const startBouncer = async (name: string, databases: string[], settings: string[]): Promise<number> => {
      const port = await freePort()
      const ini = join(dir, `${name}.ini`)
      const logFile = join(dir, `${name}.log`)
      writeFileSync(
        ini,
        [
          '[databases]',
          ...databases,
          '[pgbouncer]',
          'listen_addr = 127.0.0.1,::1',
          `listen_port = ${port}`,
          `unix_socket_dir = ${join(dir, name)}`,
          'auth_type = scram-sha-256',
          `auth_file = ${userlist}`,
          'pool_mode = transaction',
          'admin_users = pgb_admin',
          'stats_users = pgb_admin',
          'reserve_pool_size = 0',
          `logfile = ${logFile}`,
          `pidfile = ${join(dir, `${name}.pid`)}`,
          'log_connections = 0',
          'log_disconnections = 0',
          // TLS when the client asks (SSLRequest or direct), plain TCP otherwise.
          'client_tls_sslmode = allow',
          `client_tls_cert_file = ${tls.cert}`,
          `client_tls_key_file = ${tls.key}`,
          `client_tls_ca_file = ${tls.ca}`,
          ...settings,
          '',
        ].join('\n'),
      )
      mkdirSync(join(dir, name))
      owned(join(dir, name))
      owned(ini)
      const respawn = async () => {
        // Its log goes to the logfile. Not a pipe for stderr: PgBouncer writes every log line there too, and
        // once an unread pipe holds 64 KB its next write blocks the whole pooler (a long soak froze on it).
        const bouncer = spawn(pgbouncer, [ini], { stdio: 'ignore', ...(user ?? {}) })
        children.push(bouncer)
        bouncers.set(name, { child: bouncer, respawn })
        await waitForPort(port, bouncer, 'pgbouncer', logFile)
      }
      await respawn()
      return port
    }
    const server = `host=127.0.0.1 port=${pgPort} dbname=app`
    const bPort = await startBouncer(
      'pgbouncer',
      [
        `app = ${server}`,
        `app_pool1 = ${server} pool_size=1`,
        // Reserved for the prepared-statement reproduction: two server connections, nobody else uses it.
        `app_pool2 = ${server} pool_size=2`,
        // The guard's observation oracle: one server connection that only that test uses.
        `app_oracle = ${server} pool_size=1`,
      ],
      ['max_client_conn = 400', 'default_pool_size = 10', ...bouncerSettings],
    )
    // A second, tiny PgBouncer that refuses a third client: "no more connections allowed (max_client_conn)".
    const tinyPort = await startBouncer(
      'tiny',
      [`app = ${server}`],
      ['max_client_conn = 2', 'default_pool_size = 1'],
    )

    const control: StackControl = {
      killBouncer: async (signal = 'SIGKILL') => {
        const b = bouncers.get('pgbouncer')
        if (b) await stopChild(b.child, signal)
        // PgBouncer's pidfile check refuses to start while a stale pidfile names a live process: ours is dead.
        rmSync(join(dir, 'pgbouncer.pid'), { force: true })
      },
      startBouncer: async () => {
        const b = bouncers.get('pgbouncer')
        if (b && b.child.exitCode === null && b.child.signalCode === null) return
        await b?.respawn()
      },
      stopPostgres: (signal = 'SIGINT') => stopChild(pg, signal),
      startPostgres: async () => {
        if (pg.exitCode === null && pg.signalCode === null) return
        rmSync(join(data, 'postmaster.pid'), { force: true })
        await spawnPg()
        const again = postgres(superUrl, { max: 1, onnotice: () => {}, connect_timeout: 10 })
        try {
          await acceptsLogins(again)
        } finally {
          await again.end({ timeout: 1 })
        }
      },
    }

    return {
      control,
      databaseUrl: `postgres://app:${password}@127.0.0.1:${bPort}/app`,
      databaseUrl6: `postgres://app:${password}@[::1]:${bPort}/app`,
      pool1Url: `postgres://app:${password}@127.0.0.1:${bPort}/app_pool1`,
      oracleUrl: `postgres://app:${password}@127.0.0.1:${bPort}/app_oracle`,
      directUrl: `postgres://app:${password}@127.0.0.1:${pgPort}/app`,
      superUrl,
      adminUrl: `postgres://pgb_admin:${adminPass}@127.0.0.1:${bPort}/pgbouncer`,
      tinyUrl: `postgres://app:${password}@127.0.0.1:${tinyPort}/app`,
      caFile: tls.ca,
      tlsUrl: `postgres://app:${password}@127.0.0.1:${bPort}/app?sslmode=verify-full`,
      directTlsUrl: `postgres://app:${password}@127.0.0.1:${pgPort}/app?sslmode=verify-full`,
      password,
      external: false,
      stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}

/** Exports the stack's URLs as the environment variables the tests, dev script and benchmarks read. */
export function stackEnv(stack: Stack): Record<string, string> {
  return {
    DATABASE_URL: stack.databaseUrl,
    DATABASE_URL_POOL1: stack.pool1Url,
    DATABASE_URL_ORACLE: stack.oracleUrl,
    DATABASE_URL_IPV6: stack.databaseUrl6,
    DIRECT_URL: stack.directUrl,
    SUPER_URL: stack.superUrl,
    PGBOUNCER_ADMIN_URL: stack.adminUrl,
    PGBOUNCER_TINY_URL: stack.tinyUrl,
    PG_CA_FILE: stack.caFile,
    DATABASE_URL_TLS: stack.tlsUrl,
    DIRECT_URL_TLS: stack.directTlsUrl,
  }
}

/**
 * `npm run stack`: start, print the URLs (with the throwaway password: loopback only, gone when the stack
 * stops) and write them as a `.env` file a second app can load (`node --env-file .tmp/stack.env app.js`),
 * then wait. SIGINT (Ctrl-C), SIGTERM or SIGHUP — from a terminal or from a script — stops everything it
 * started, also while it is still starting; so does the death of its parent (`npm run` when npm is killed).
 */
async function main(): Promise<void> {
  const started = Date.now()
  const envFile = resolve(process.env.STACK_ENV_FILE ?? join(import.meta.dirname, '..', '.tmp', 'stack.env'))
  const starting = startStack()
  let stopping: Promise<void> | undefined
  const bye = (code: number) =>
    (stopping ??= (async () => {
      await starting.then(
        (s) => s.stop(),
        () => {},
      )
      rmSync(envFile, { force: true })
      process.exit(code)
    })())
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => void bye(0))
  const parent = process.ppid
  setInterval(() => process.ppid !== parent && void bye(0), 500).unref()

  const stack = await starting
  if (stopping) return
  const env = stackEnv(stack)
  mkdirSync(dirname(envFile), { recursive: true })
  writeFileSync(
    envFile,
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  )
  console.log(
    `stack up in ${Date.now() - started} ms${stack.external ? ' (external, from DATABASE_URL)' : ''} (pid ${process.pid})`,
  )
  for (const [k, v] of Object.entries(env)) console.log(`${k}=${v}`)
  console.log(`written to ${envFile} — Ctrl-C (or SIGTERM) stops the stack and removes it`)
  // Keep the event loop alive until a signal arrives.
  setInterval(() => {}, 1 << 30)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e)
    process.exit(1)
  })
}
