/**
 * The statements a request has sent and not yet seen settle: their CancelRequests (postgres.js's own
 * `q.cancel()` works only once), the `queryTimeout` deadline of each (per fetch for a cursor), and the
 * repeated cancel an abort needs.
 */
import { ABORT_CANCEL_EVERY_MS, CANCEL_GRACE_MS } from '../options'

const noop = () => {}

/** A request's running statements. */
export interface Statements {
  /** Tracks a statement just sent; call the returned function when it settled. */
  track(q: any): () => void
  /** True once the statement's `queryTimeout` fired (whatever it fails with then is `QUERY_TIMEOUT`). */
  timedOut(q: unknown): boolean
  /** Statements running now. */
  readonly size: number
  /**
   * Cancels every running statement, and again every 100 ms until they all settled or `ms` passed:
   * PgBouncer drops a CancelRequest whose client has already disconnected, and a statement still queued in
   * PgBouncer (no server free yet) cannot be cancelled before it starts — the repeat catches it then.
   */
  cancelUntilSettled(ms: number): Promise<void>
}

/**
 * @param queryTimeout seconds (0: no deadline)
 * @param stuck called when a timed-out statement's cancel did not land within 1 s: destroy the sockets
 * @param cancelling called just before a timed-out statement is cancelled (its connection must not be reused)
 *
 * @example
 * ```ts
 * const running = statements(30, () => console.log('destroy the sockets'))
 * declare const q: any
 * const settled = running.track(q)
 * settled()
 * ```
 */
export function statements(
  queryTimeout: number,
  stuck: () => void,
  cancelling: () => void = noop,
): Statements {
  const active = new Map<any, () => void>()
  const expired = new WeakSet<object>()
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
      timer = setTimeout(() => {
        expired.add(q)
        cancelling()
        active.get(q)?.()
        destroy = setTimeout(stuck, CANCEL_GRACE_MS)
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

  return {
    track(q) {
      const canceller = q.canceller as ((q: unknown) => void) | null
      active.set(q, () => {
        if (canceller)
          Promise.resolve()
            .then(() => canceller(q))
            .catch(noop)
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
    async cancelUntilSettled(ms) {
      if (!active.size) return
      cancelAll()
      const repeat = setInterval(cancelAll, ABORT_CANCEL_EVERY_MS)
      let give: ReturnType<typeof setTimeout> | undefined
      await new Promise<void>((r) => {
        drained = r
        give = setTimeout(r, ms)
      })
      drained = noop
      clearInterval(repeat)
      clearTimeout(give)
    },
  }
}
