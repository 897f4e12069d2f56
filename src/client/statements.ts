/**
 * The statements a request has sent and not yet seen settle: their CancelRequests (postgres.js's own
 * `q.cancel()` works only once), the `queryTimeout` deadline of each (per fetch for a cursor), the
 * repeated cancel an abort needs, and the cancels still in flight: a CancelRequest travels on a
 * connection of its own and may land after its statement settled, on the next statement of the same
 * PgBouncer client connection — nothing is sent while one is in flight (`quiet`).
 */
import { ABORT_CANCEL_EVERY_MS, CANCEL_GRACE_MS } from '../options'

const noop = () => {}

/** `setTimeout` that does not keep a Node process alive (`unref` where the runtime has it). */
function later(f: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimeout(f, ms)
  ;(t as { unref?: () => void }).unref?.()
  return t
}

/** A request's running statements. */
export interface Statements {
  /** Tracks a statement just sent; call the returned function when it settled. */
  track(q: any): () => void
  /** True once the statement's `queryTimeout` fired (whatever it fails with then is `QUERY_TIMEOUT`). */
  timedOut(q: unknown): boolean
  /** Statements running now. */
  readonly size: number
  /**
   * Undefined when no CancelRequest is in flight; else a promise settling once they all closed (postgres.js
   * resolves a cancel when its socket closes), or after 1 s — then `stuck` destroyed the sockets.
   */
  quiet(): Promise<void> | undefined
  /**
   * Cancels every running statement, and again after 100, 200, 400 ms … until they all settled or `ms`
   * passed: PgBouncer drops a CancelRequest whose client has already disconnected, and a statement still
   * queued in PgBouncer (no server free yet) cannot be cancelled before it starts — the repeat catches it.
   */
  cancelUntilSettled(ms: number): Promise<void>
}

/**
 * @param queryTimeout seconds (0: no deadline)
 * @param stuck called when a cancel did not land within 1 s: destroy the sockets
 *
 * @example
 * ```ts
 * const running = statements(30, () => console.log('destroy the sockets'))
 * declare const q: any
 * const settled = running.track(q)
 * settled()
 * ```
 */
export function statements(queryTimeout: number, stuck: () => void): Statements {
  const active = new Map<any, () => void>()
  const expired = new WeakSet<object>()
  // CancelRequests sent and not yet answered (their socket not closed).
  const inFlight = new Set<Promise<unknown>>()
  let waiting: Promise<void> | undefined
  let drained: () => void = noop
  const cancelAll = () => {
    for (const cancel of active.values()) cancel()
  }

  // Cancel on the server at the deadline; if the cancel does not land within a second (stalled network,
  // dead pooler), `stuck` destroys the sockets.
  const deadline = (q: any): (() => void) => {
    if (!queryTimeout) return noop
    let timer: ReturnType<typeof setTimeout> | undefined
    let destroy: ReturnType<typeof setTimeout> | undefined
    const arm = () => {
      clearTimeout(timer)
      timer = later(() => {
        expired.add(q)
        active.get(q)?.()
        destroy = later(stuck, CANCEL_GRACE_MS)
      }, queryTimeout * 1000)
    }
    arm()
    // A cursor: each fetch has the deadline, not the whole iteration. A batch delivered stops the clock;
    // asking for the next one (its promise settles) starts it again.
    if (q.cursorFn) {
      const fetched =
        (f: (...a: unknown[]) => unknown) =>
        (...a: unknown[]) => {
          clearTimeout(timer)
          const r = f(...a)
          Promise.resolve(r).then(() => active.has(q) && arm(), noop)
          return r
        }
      let fn = fetched(q.cursorFn)
      Object.defineProperty(q, 'cursorFn', {
        get: () => fn,
        set: (f: (...a: unknown[]) => unknown) => {
          fn = fetched(f)
        },
        configurable: true,
      })
    }
    return () => {
      clearTimeout(timer)
      clearTimeout(destroy)
    }
  }

  const quiet = (): Promise<void> | undefined => {
    if (!inFlight.size) return undefined
    waiting ??= new Promise<void>((resolve) => {
      const give = later(() => {
        stuck() // a cancel still on its way could hit whatever runs next on that connection
        resolve()
      }, CANCEL_GRACE_MS)
      const all = (): Promise<void> =>
        Promise.allSettled([...inFlight]).then(() => (inFlight.size ? all() : undefined))
      void all().then(() => {
        clearTimeout(give)
        resolve()
      })
    }).finally(() => {
      waiting = undefined
    })
    return waiting
  }

  return {
    track(q) {
      const canceller = q.canceller as ((q: unknown) => unknown) | null
      active.set(q, () => {
        if (!canceller) return
        const p: Promise<unknown> = Promise.resolve()
          .then(() => canceller(q))
          .catch(noop)
          .finally(() => inFlight.delete(p))
        inFlight.add(p)
      })
      const clear = deadline(q)
      return () => {
        clear()
        active.delete(q)
        if (active.size === 0) drained()
      }
    },
    timedOut: (q) => !!q && typeof q === 'object' && expired.has(q),
    get size() {
      return active.size
    },
    quiet,
    async cancelUntilSettled(ms) {
      if (!active.size) return
      let every = ABORT_CANCEL_EVERY_MS
      let repeat: ReturnType<typeof setTimeout> | undefined
      const again = () => {
        cancelAll()
        repeat = later(again, every)
        every *= 2
      }
      again()
      let give: ReturnType<typeof setTimeout> | undefined
      await new Promise<void>((r) => {
        drained = r
        give = later(r, ms)
      })
      drained = noop
      clearTimeout(repeat)
      clearTimeout(give)
    },
  }
}
