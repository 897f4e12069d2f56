/**
 * The statements a request has sent and not yet seen settle: their CancelRequests (postgres.js's own
 * `q.cancel()` works only once), the `queryTimeout` deadline of each (per fetch for a cursor), the
 * repeated cancel an abort needs, and the cancels still in flight: a CancelRequest travels on a
 * connection of its own and may land after its statement settled, on the next statement of the same
 * PgBouncer client connection — nothing is sent while one is in flight (`quiet`).
 */
import { ABORT_CANCEL_EVERY_MS, CANCEL_GRACE_MS } from '../options'
import type { Probe } from './probe'

const noop = () => {}

/** `setTimeout` that does not keep a Node process alive (`unref` where the runtime has it). */
function later(f: () => void, ms: number): ReturnType<typeof setTimeout> {
  const t = setTimeout(f, ms)
  ;(t as { unref?: () => void }).unref?.()
  return t
}

/**
 * `size` on a prototype: a getter in an object literal makes V8 build a slow dictionary object per call
 * (hundreds of ns, and GC weight), once per request here. And a class, not a literal of closures: V8 may
 * allocate what a literal builds once per request straight in the old generation, where a dead one keeps
 * the whole request alive until the next full GC.
 */
class Running implements Statements {
  constructor(
    private readonly active: Map<unknown, unknown>,
    readonly track: Statements['track'],
    readonly copying: Statements['copying'],
    readonly timedOut: Statements['timedOut'],
    readonly lostText: Statements['lostText'],
    readonly quiet: Statements['quiet'],
    readonly cancelUntilSettled: Statements['cancelUntilSettled'],
  ) {}
  get size(): number {
    return this.active.size
  }
}

/** A statement's deadline clock (a class: see `Running`). */
class Clock {
  constructor(
    readonly arm: () => void,
    readonly stop: () => void,
  ) {}
}

/** A request's running statements. */
export interface Statements {
  /**
   * Tracks a statement just sent; call the returned function when it settled. `probing`: it may be waiting
   * in the pooler's queue (a top-level statement, not one inside a transaction that holds a server already).
   */
  track(q: any, probing?: boolean): () => void
  /**
   * A COPY's stream (`.readable()` / `.writable()`) started: from now on the deadline runs only while the
   * COPY waits on the network or the server — a chunk asked for and not delivered, a chunk written and not
   * flushed, the end written and not confirmed — never while your code is slow to read or write.
   */
  copying(q: any, stream: any): void
  /** True once the statement's `queryTimeout` fired (whatever it fails with then is `QUERY_TIMEOUT`). */
  timedOut(q: unknown): boolean
  /** The pooler's text when the probe found its database down while the statement waited (then `CONNECTION_LOST`). */
  lostText(q: unknown): string | undefined
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
 * @param cancelling called just before a timed-out statement is cancelled (its connection must not be reused)
 * @param probe asked when a statement had no answer for `probe.afterMs`: the pooler's database is down
 *   (its statement waits in the pooler's queue) — then the sockets are destroyed at once (`stuck`)
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
  probe?: Probe,
): Statements {
  const active = new Map<any, () => void>()
  // Statements past their deadline, and the pooler's text for those the probe found waiting on a database
  // that is down: created on first use (most requests never need them).
  let expired: WeakSet<object> | undefined
  let down: WeakMap<object, string> | undefined
  // CancelRequests sent and not yet answered (their socket not closed).
  const inFlight = new Set<Promise<unknown>>()
  let waiting: Promise<void> | undefined
  let drained: () => void = noop
  const cancelAll = () => {
    for (const cancel of active.values()) cancel()
  }

  // Cancel on the server at the deadline; if the cancel does not land within a second (stalled network,
  // dead pooler), `stuck` destroys the sockets.
  // The deadline's clock of each statement (COPY streams start and stop it).
  const clocks = new Map<any, Clock>()
  const deadline = (q: any, p: Probe | undefined): (() => void) => {
    if (!queryTimeout && !p) return noop
    let timer: ReturnType<typeof setTimeout> | undefined
    let destroy: ReturnType<typeof setTimeout> | undefined
    // Each arm of the clock is a generation: a verdict asked in an older one (the statement has answered
    // since: a cursor batch, a COPY chunk) is ignored.
    let generation = 0
    const disarm = () => {
      generation++
      clearTimeout(timer)
    }
    const expire = () => {
      expired ??= new WeakSet()
      expired.add(q)
      cancelling()
      active.get(q)?.()
      destroy = later(stuck, CANCEL_GRACE_MS)
    }
    // Silent for p.afterMs: is the pooler's database down? Then the statement only waits in the pooler's
    // queue (nothing runs on a server): destroy the sockets now, CONNECTION_LOST with the pooler's text.
    const ask = (probe: Probe, g: number, since: number) =>
      void probe.check(since).then((text) => {
        if (!text || g !== generation || !active.has(q) || expired?.has(q) || down?.has(q)) return
        disarm()
        down ??= new WeakMap()
        down.set(q, text)
        cancelling()
        stuck()
      })
    // One timer per statement: a probe every afterMs while silent, then the deadline.
    const arm = () => {
      disarm()
      if (expired?.has(q) || down?.has(q)) return
      const full = queryTimeout * 1000
      // No probe (direct, in a transaction, …): just the deadline, nothing else per statement.
      if (!p) {
        timer = later(expire, full)
        return
      }
      const g = generation
      const since = Date.now()
      const step = (elapsed: number) => {
        if (!full || elapsed + p.afterMs < full)
          timer = later(() => {
            ask(p, g, since)
            step(elapsed + p.afterMs)
          }, p.afterMs)
        else timer = later(expire, full - elapsed)
      }
      step(0)
    }
    arm()
    clocks.set(q, new Clock(() => active.has(q) && arm(), disarm))
    // A cursor: each fetch has the deadline, not the whole iteration. A batch delivered stops the clock;
    // asking for the next one (its promise settles) starts it again.
    if (q.cursorFn) {
      const fetched =
        (f: (...a: unknown[]) => unknown) =>
        (...a: unknown[]) => {
          disarm()
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
      clocks.delete(q)
      disarm()
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

  const track = (q: any, probing = false) => {
    const canceller = q.canceller as ((q: unknown) => unknown) | null
    active.set(q, () => {
      if (!canceller) return
      const p: Promise<unknown> = Promise.resolve()
        .then(() => canceller(q))
        .catch(noop)
        .finally(() => inFlight.delete(p))
      inFlight.add(p)
    })
    const clear = deadline(q, probing ? probe : undefined)
    return () => {
      clear()
      active.delete(q)
      if (active.size === 0) drained()
    }
  }
  const copying = (q: any, stream: any) => {
    const clock = clocks.get(q)
    if (!clock) return
    clock.stop()
    // postgres.js's COPY streams: a Readable fed by `push` (CopyData) whose `_read` resumes the socket, a
    // Writable whose `_write` / `_final` write to the socket.
    if (typeof stream._read === 'function') {
      const read = stream._read
      const push = stream.push
      stream._read = function (this: unknown, ...a: unknown[]) {
        clock.arm() // asked for more: the server has queryTimeout to deliver it
        return read.apply(this, a)
      }
      stream.push = function (this: unknown, chunk: unknown, ...a: unknown[]) {
        const more = push.call(this, chunk, ...a)
        // Delivered; the clock runs on only while the reader still wants more.
        chunk !== null && more ? clock.arm() : clock.stop()
        return more
      }
    }
    if (typeof stream._write === 'function') {
      const write = stream._write
      stream._write = function (this: unknown, chunk: unknown, enc: unknown, cb: (e?: unknown) => void) {
        clock.arm()
        return write.call(this, chunk, enc, (e?: unknown) => {
          clock.stop()
          cb(e)
        })
      }
    }
    if (typeof stream._final === 'function') {
      const final = stream._final
      stream._final = function (this: unknown, ...a: unknown[]) {
        clock.arm() // the end is written: the server has queryTimeout to confirm it
        return final.apply(this, a)
      }
    }
  }
  const timedOut = (q: unknown) => !!q && typeof q === 'object' && !!expired?.has(q)
  const lostText = (q: unknown) => (q && typeof q === 'object' ? down?.get(q) : undefined)
  const cancelUntilSettled = async (ms: number) => {
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
  }
  return new Running(active, track, copying, timedOut, lostText, quiet, cancelUntilSettled)
}
