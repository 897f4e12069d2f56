/**
 * The no-pipelining gate. PgBouncer (1.18) and Supavisor release a server connection at the first
 * ReadyForQuery and drop replies to statements pipelined behind it, so outside `sql.begin` at most one
 * statement per connection may be in flight: `max` slots for `max` connections.
 */

/** A counting semaphore: at most `size` statements (or transactions) in flight at once. */
export interface Gate {
  acquire(): Promise<void>
  release(): void
}

/**
 * @example
 * const g = gate(1)
 * await g.acquire()
 * try { await runOneStatement() } finally { g.release() }
 */
export function gate(size: number): Gate {
  let active = 0
  const waiting: (() => void)[] = []
  return {
    acquire(): Promise<void> {
      if (active >= size) return new Promise((r) => waiting.push(r))
      active++
      return Promise.resolve()
    },
    release(): void {
      const next = waiting.shift()
      if (next) next()
      else active--
    },
  }
}

/**
 * An iterated postgres.js cursor (`for await (const rows of q.cursor(n))`) never settles the query's own
 * promise: this wraps its iterator so `release` runs when the iteration ends, fails or is broken off.
 *
 * @example
 * q.cursor = (...a) => releaseWhenIterated(cursor.apply(q, a), release)
 */
export function releaseWhenIterated<T>(iterable: AsyncIterable<T>, release: () => void): AsyncIterable<T> {
  const it = iterable[Symbol.asyncIterator]()
  return {
    [Symbol.asyncIterator]: () => ({
      next: async () => {
        try {
          const x = await it.next()
          if (x.done) release()
          return x
        } catch (e) {
          release()
          throw e
        }
      },
      return: async (value?: unknown) => {
        release()
        return it.return ? it.return(value) : { done: true as const, value: undefined as T }
      },
    }),
  }
}
