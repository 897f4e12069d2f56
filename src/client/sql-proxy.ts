/**
 * `c.var.sql`: a Proxy over a real postgres.js `Sql` (or a transaction's), so Drizzle and postgres.js's
 * helpers keep working, with the methods that bypass the query hook replaced (`unsafe`, `file`, `notify`,
 * `savepoint`, `begin`) and, in transaction mode, the ones that need a session of their own refused.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import type { Sql, TransactionSql } from 'postgres'
import { clientClosed, PoolerError, prepareUnsupported, SESSION_ONLY, twoPhaseCommit } from '../errors'
import type { Gate } from './gate'
import { reserveMethod } from './reserve'

/** What a wrapped `Sql` needs from its request client. */
export interface ProxyContext {
  transaction: boolean
  /** Connections per request (`max`). */
  max: number
  /** The guard refuses (level `error`). */
  guardRefuses: boolean
  /** postgres.js's `prepare` (the preset's): `true` only outside transaction mode, and with Hyperdrive. */
  prepare: boolean | undefined
  isClosed(): boolean
  /** The driver client, created on first use. */
  ensure(): Sql<any>
  /** The error when `c.var.sql` is used inside its own transaction with max 1, else undefined. */
  deadlocked(): PoolerError | undefined
  /** Hooks one query (`load` supplies its text first: `sql.file`). */
  patch<Q>(query: Q, g: Gate | undefined, load?: () => Promise<string>): Q
  mapError(e: unknown): unknown
  /** Identifies the request client, for `insideTransaction`. */
  owner: object
}

/** Which client's sql.begin() callback the current code runs in (to catch the outer-client deadlock). */
export const insideTransaction = new AsyncLocalStorage<object>()

const QUERY_METHODS = new Set(['unsafe', 'file', 'begin', 'notify', 'listen', 'subscribe', 'reserve'])

const rejectWith = (method: keyof typeof SESSION_ONLY) => async (): Promise<never> => {
  throw new PoolerError(SESSION_ONLY[method].code, SESSION_ONLY[method].message)
}
/** Replacements for the postgres.js methods that need a session of their own (transaction mode). */
const SESSION_ONLY_METHODS = {
  listen: rejectWith('listen'),
  subscribe: rejectWith('subscribe'),
}

async function readText(path: string): Promise<string> {
  const spec = 'node:fs/promises' // not an import statement: bundlers for Workers leave it alone
  const fs = (await import(spec)) as { readFile(p: string, enc: 'utf8'): Promise<string> }
  return fs.readFile(path, 'utf8')
}

function unsafeArgs(args: unknown[]): [unknown[], Record<string, any>] {
  const [params = [], opts = {}] = args as [unknown, unknown]
  return Array.isArray(params) ? [params, (opts ?? {}) as any] : [[], (params ?? {}) as any]
}

/**
 * Wraps a postgres.js Sql (the top-level one, `top`, or a transaction's) so every query is hooked.
 *
 * @example
 * const sql = wrapSql(ctx, ctx.ensure, gate(1), true)
 */
export function wrapSql<S extends Sql<any> | TransactionSql<any>>(
  ctx: ProxyContext,
  target: () => S,
  g: Gate | undefined,
  top: boolean,
): S {
  const checkPrepare = (opts: Record<string, any>) => {
    if (ctx.transaction && !ctx.prepare && opts.prepare === true) throw prepareUnsupported()
  }
  const overrides: Record<string, unknown> = {
    unsafe(text: string, ...rest: unknown[]) {
      const [params, opts] = unsafeArgs(rest)
      checkPrepare(opts)
      return ctx.patch(target().unsafe(text, params as any[], opts), g)
    },
    file(path: string, ...rest: unknown[]) {
      const [params, opts] = unsafeArgs(rest)
      checkPrepare(opts)
      const q = target().unsafe(
        '',
        params as any[],
        {
          prepare: ctx.prepare,
          ...opts,
          simple: 'simple' in opts ? opts.simple : params.length === 0,
        } as Record<string, unknown>,
      )
      return ctx.patch(q, g, () => readText(path))
    },
    notify(channel: string, payload: string) {
      return (proxy as any)`select pg_notify(${channel}, ${`${payload}`})`
    },
    savepoint(name: unknown, fn?: (s: any) => unknown) {
      const t = target() as any
      if (typeof name === 'function')
        return t.savepoint((s: any) => name(wrapSql(ctx, () => s, undefined, false)))
      return t.savepoint(name, (s: any) => fn!(wrapSql(ctx, () => s, undefined, false)))
    },
  }
  if (!top && ctx.transaction && ctx.guardRefuses) {
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
        const s = ctx.ensure()
        const stuck = ctx.deadlocked()
        if (stuck) throw stuck
        await g?.acquire()
        try {
          return await s.begin(opts as string, (tx) =>
            insideTransaction.run(ctx.owner, () => fn!(wrapSql(ctx, () => tx, undefined, false))),
          )
        } catch (e) {
          throw ctx.mapError(e)
        } finally {
          g?.release()
        }
      },
      reserve: reserveMethod(ctx, g, wrapSql),
      ...(ctx.transaction && SESSION_ONLY_METHODS),
    })
  }
  const proxy: S = new Proxy(function sql() {} as unknown as S, {
    apply(_t, _this, args) {
      if (ctx.isClosed()) throw clientClosed()
      const s = target() as any
      const q = s(...args)
      return q instanceof Promise ? ctx.patch(q, g) : q
    },
    get(_t, prop) {
      if (typeof prop === 'string' && prop in overrides) {
        if (ctx.isClosed() && QUERY_METHODS.has(prop)) throw clientClosed()
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
