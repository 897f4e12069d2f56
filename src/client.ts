/**
 * One postgres.js client per request, created on first use, and the one place every query passes through:
 * the guard, the no-pipelining gate, `CLIENT_CLOSED`, the mapping of connection errors to `PoolerError`.
 * `sql` stays a real postgres.js `Sql` (a Proxy over it), so Drizzle and postgres.js's helpers keep working.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import postgres, { type Sql, type TransactionSql } from 'postgres'
import type { ClientConfig } from './config'
import { guardQuery } from './enforce'
import { PoolerError } from './errors'
import { mapConnectionError } from './failures'
import { type Gate, gate } from './gate'
import { inlineQuery } from './inline'
import { type HookContext, hookQuery } from './query-hook'
import {
  clientClosed,
  deadlockInTransaction,
  prepareUnsupported,
  SESSION_ONLY_METHODS,
  twoPhaseCommit,
} from './refusals'
import { registerArrayTypes, syncArrayTypes } from './types'

/** A request's client and its lifecycle. */
export interface RequestClient {
  /** What handlers see as `c.var.sql`. */
  readonly sql: Sql<any>
  /** True once a query was created (the driver client exists). */
  readonly used: boolean
  /** Queries sent or attempted. */
  readonly queries: number
  readonly closed: boolean
  /** Graceful, bounded close: running queries get `timeout` seconds, then sockets are destroyed. */
  close(timeout: number): Promise<void>
  /** The client went away: cancel running statements on the server (bounded), then destroy the sockets. */
  abort(): Promise<void>
}

const noop = () => {}
/** Which client's sql.begin() callback the current code runs in (to catch the outer-client deadlock). */
const insideTransaction = new AsyncLocalStorage<object>()
const QUERY_METHODS = new Set(['unsafe', 'file', 'begin', 'notify', 'listen', 'subscribe', 'reserve'])

async function readText(path: string): Promise<string> {
  const spec = 'node:fs/promises' // not an import statement: bundlers for Workers leave it alone
  const fs = (await import(spec)) as { readFile(p: string, enc: 'utf8'): Promise<string> }
  return fs.readFile(path, 'utf8')
}

/**
 * Creates the per-request client. Nothing connects until the first query runs.
 *
 * @example
 * const client = createRequestClient(clientConfig(url, parseOptions()))
 * await client.sql`select 1`
 * await client.close(5)
 */
export function createRequestClient(config: ClientConfig): RequestClient {
  const { mode, options } = config
  const transaction = mode === 'transaction'
  const guardLevel = options.guard ?? (transaction ? 'error' : 'off')
  // Outside sql.begin, at most one statement in flight per connection: PgBouncer/Supavisor drop replies
  // to queries pipelined behind a ReadyForQuery (the pipelining hang).
  const inFlight = transaction ? gate(options.max) : undefined
  // Values as escaped literals: one round trip per query instead of two (see src/inline.ts).
  const inline = (options.inlineParams ?? transaction) && !config.driver.types
  let real: Sql<any> | undefined
  let closed = false
  let queries = 0
  let arraysSynced = false
  const active = new Set<{ cancel(): unknown }>()
  const self = {}
  // With max: 1 the transaction holds the only connection: c.var.sql inside its own sql.begin() callback
  // would wait for it forever. Fail fast instead.
  const deadlocked = () =>
    inFlight && options.max === 1 && insideTransaction.getStore() === self
      ? deadlockInTransaction()
      : undefined

  // Creating the driver client connects nothing; reading its properties stays allowed after the request.
  const ensure = (): Sql<any> => {
    if (!real) {
      real = postgres(config.url, config.driver)
      if (config.driver.fetch_types === false) registerArrayTypes(real)
    }
    return real
  }
  const emit = (event: Parameters<NonNullable<typeof options.onEvent>>[0]) => {
    try {
      options.onEvent?.(event)
    } catch {} // an observer must never break a request
  }
  const mapError = (e: unknown) => {
    const mapped = mapConnectionError(e, config)
    if (mapped !== e && mapped instanceof PoolerError)
      emit({
        type: 'error',
        host: config.info.host,
        mode,
        code: mapped.code,
        message: mapped.message,
      })
    return mapped
  }

  const hooks: HookContext = {
    refuse: (q, gated) =>
      closed ? clientClosed() : (guardQuery(q, guardLevel) ?? (gated ? deadlocked() : undefined)),
    closedNow: () => (closed ? clientClosed() : undefined),
    beforeSend: (q) => {
      if (!arraysSynced && config.driver.fetch_types === false) syncArrayTypes(real!)
      arraysSynced = true
      if (inline) inlineQuery(q, real!.options as any)
    },
    sent: (q) => {
      queries++ // statements sent (fragments and refused statements do not count)
      active.add(q)
      return () => active.delete(q)
    },
    mapError,
  }
  const patch = <Q>(query: Q, g: Gate | undefined, load?: () => Promise<string>): Q =>
    hookQuery(query, g, hooks, load)

  function unsafeArgs(args: unknown[]): [unknown[], Record<string, any>] {
    const [params = [], opts = {}] = args as [unknown, unknown]
    return Array.isArray(params) ? [params, (opts ?? {}) as any] : [[], (params ?? {}) as any]
  }
  function checkPrepare(opts: Record<string, any>) {
    if (transaction && opts.prepare === true) throw prepareUnsupported()
  }

  /** Wraps a postgres.js Sql (the top-level one or a transaction's) so every query is patched. */
  function wrap<S extends Sql<any> | TransactionSql<any>>(
    target: () => S,
    g: Gate | undefined,
    top: boolean,
  ): S {
    const overrides: Record<string, unknown> = {
      unsafe(text: string, ...rest: unknown[]) {
        const [params, opts] = unsafeArgs(rest)
        checkPrepare(opts)
        return patch(target().unsafe(text, params as any[], opts), g)
      },
      file(path: string, ...rest: unknown[]) {
        const [params, opts] = unsafeArgs(rest)
        checkPrepare(opts)
        const q = target().unsafe(
          '',
          params as any[],
          {
            prepare: config.driver.prepare,
            ...opts,
            simple: 'simple' in opts ? opts.simple : params.length === 0,
          } as Record<string, unknown>,
        )
        return patch(q, g, () => readText(path))
      },
      notify(channel: string, payload: string) {
        return (proxy as any)`select pg_notify(${channel}, ${`${payload}`})`
      },
      savepoint(name: unknown, fn?: (s: any) => unknown) {
        const t = target() as any
        if (typeof name === 'function') return t.savepoint((s: any) => name(wrap(() => s, undefined, false)))
        return t.savepoint(name, (s: any) => fn!(wrap(() => s, undefined, false)))
      },
    }
    if (!top && transaction && guardLevel === 'error') {
      overrides.prepare = () => {
        throw twoPhaseCommit()
      }
    }
    if (top) {
      Object.assign(overrides, {
        async begin(opts: unknown, fn?: (tx: TransactionSql<any>) => unknown) {
          if (typeof opts === 'function') {
            fn = opts as typeof fn
            opts = ''
          }
          const s = ensure()
          const stuck = deadlocked()
          if (stuck) throw stuck
          await g?.acquire()
          try {
            return await s.begin(opts as string, (tx) =>
              insideTransaction.run(self, () => fn!(wrap(() => tx, undefined, false))),
            )
          } catch (e) {
            throw mapError(e)
          } finally {
            g?.release()
          }
        },
        ...(transaction && SESSION_ONLY_METHODS),
      })
    }
    const proxy: S = new Proxy(function sql() {} as unknown as S, {
      apply(_t, _this, args) {
        if (closed) throw clientClosed()
        const s = target() as any
        const q = s(...args)
        return q instanceof Promise ? patch(q, g) : q
      },
      get(_t, prop) {
        if (typeof prop === 'string' && prop in overrides) {
          if (closed && QUERY_METHODS.has(prop)) throw clientClosed()
          return overrides[prop]
        }
        return Reflect.get(target() as object, prop)
      },
      set(_t, prop, value) {
        return Reflect.set(target() as object, prop, value)
      },
      has(_t, prop) {
        return prop in (target() as object)
      },
    })
    return proxy
  }

  const sql = wrap(ensure, inFlight, true)
  return {
    sql,
    get used() {
      return real !== undefined
    },
    get queries() {
      return queries
    },
    get closed() {
      return closed
    },
    async abort() {
      closed = true
      if (!real) return
      // Cancel first: PgBouncer drops a CancelRequest whose client has already disconnected.
      const running = [...active]
      if (running.length) {
        const ended = running.map((q) => {
          Promise.resolve(q.cancel()).catch(() => {})
          return Promise.prototype.then.call(q, noop, noop)
        })
        await Promise.race([Promise.all(ended), new Promise((r) => setTimeout(r, 1000))])
      }
      await real.end({ timeout: 0 })
    },
    async close(timeout: number) {
      closed = true
      if (real) await real.end({ timeout })
    },
  }
}
