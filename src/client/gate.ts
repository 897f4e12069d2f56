/**
 * The no-pipelining gate. PgBouncer (1.18) and Supavisor release a server connection at the first
 * ReadyForQuery and drop replies to statements pipelined behind it, so outside `sql.begin` at most one
 * statement per connection may be in flight: `max` slots for `max` connections.
 */

const settled = Promise.resolve()

/**
 * Runs `take` (what takes the request's gate) one microtask from now: when a statement takes it. A
 * statement reaches the gate in postgres.js's `handle()` one microtask after it was started (awaited or
 * executed), so `sql\`…\`.execute(); sql.begin(…)` keeps the statement first, and `sql.begin(…)` then a
 * statement keeps the BEGIN first: microtasks run in the order they were queued.
 */
export function gateTurn<T>(take: () => T | Promise<T>): Promise<T> {
  return settled.then(take)
}

/** Gives a slot back. Each one works once: calling it again does nothing. */
export type Release = () => void

/** A counting semaphore: at most `size` statements (or transactions) in flight at once. */
export interface Gate {
  /** Waits for a slot. */
  acquire(): Promise<Release>
  /** A slot now, or undefined when all are taken (never waits, so the caller keeps its turn). */
  tryAcquire(): Release | undefined
  /** A slot now when one is free (no promise), else a promise of it (queued in this tick: the turn is kept). */
  acquireNow(): Release | Promise<Release>
  /** Slots taken now (for tests and stats). */
  readonly inUse: number
}

/**
 * A slot can only be given back through the `Release` its acquisition returned, once: the gate cannot be
 * released more often than it was acquired.
 *
 * @example
 * ```ts
 * import { gate } from './gate'
 *
 * const g = gate(1)
 * const release = await g.acquire()
 * try {
 *   await Promise.resolve('one statement')
 * } finally {
 *   release()
 * }
 * ```
 */
export function gate(size: number): Gate {
  return new CountingGate(size)
}

/** A class, not an object literal: a getter in a literal makes V8 build a slow dictionary object per call. */
class CountingGate implements Gate {
  private active = 0
  // Created on the first wait (most requests never wait): an array literal per request is one more
  // allocation V8 may move to the old generation.
  private waiting: ((release: Release) => void)[] | undefined
  constructor(private readonly size: number) {}
  private slot(): Release {
    let done = false
    return () => {
      if (done) return
      done = true
      const next = this.waiting?.shift()
      if (next) next(this.slot())
      else this.active--
    }
  }
  tryAcquire(): Release | undefined {
    if (this.active >= this.size) return undefined
    this.active++
    return this.slot()
  }
  acquireNow(): Release | Promise<Release> {
    return this.tryAcquire() ?? this.wait()
  }
  acquire(): Promise<Release> {
    const r = this.tryAcquire()
    return r ? Promise.resolve(r) : this.wait()
  }
  /** All slots are taken: the next one given back. */
  private wait(): Promise<Release> {
    this.waiting ??= []
    const waiting = this.waiting
    return new Promise((resolve) => waiting.push(resolve))
  }
  get inUse(): number {
    return this.active
  }
}

/**
 * An iterated postgres.js cursor (`for await (const rows of q.cursor(n))`) never settles the query's own
 * promise: this wraps its iterator so `release` runs when the iteration ends or fails, and `onReturn` (by
 * default `release`) after it is broken off and the iterator's own `return()` ran.
 *
 * @example
 * ```ts
 * import { releaseWhenIterated } from './gate'
 *
 * async function* rows() {
 *   yield [1]
 * }
 * for await (const batch of releaseWhenIterated(rows(), () => console.log('released'))) console.log(batch)
 * ```
 */
export function releaseWhenIterated<T>(
  iterable: AsyncIterable<T>,
  release: () => void,
  onReturn: () => void = release,
): AsyncIterable<T> {
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
        try {
          return it.return ? await it.return(value) : { done: true as const, value: undefined as T }
        } finally {
          onReturn()
        }
      },
    }),
  }
}
