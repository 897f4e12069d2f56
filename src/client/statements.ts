/**
 * The statements a request has sent and not yet seen settle: their CancelRequests (postgres.js's own
 * `q.cancel()` works only once), the `queryTimeout` deadline of each (per fetch for a cursor), the
 * repeated cancel an abort needs, and the cancels still in flight: a CancelRequest travels on a
 * connection of its own and may land after its statement settled, on the next statement of the same
 * PgBouncer client connection — nothing is sent while one is in flight (`quiet`).
 */
import { ABORT_CANCEL_EVERY_MS, CANCEL_GRACE_MS } from '../options'
import type { Probe } from './probe'
import type { Settles } from './query-hook'

const noop = () => {}

/** `setTimeout` that does not keep a Node process alive (`unref` where the runtime has it). */
function later<A extends unknown[]>(
  f: (...a: A) => void,
  ms: number,
  ...a: A
): ReturnType<typeof setTimeout> {
  const t = setTimeout(f, ms, ...a)
  ;(t as { unref?: () => void }).unref?.()
  return t
}

/** A request's running statements. */
export interface Statements {
  /**
   * Tracks a statement just sent; call the returned tracking's `settled()` when it settled. `probing`: it may be waiting
   * in the pooler's queue (a top-level statement, not one inside a transaction that holds a server already).
   */
  track(q: any, probing?: boolean): Settles
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

/** Monotonic milliseconds: a wall clock stepped back would hold every deadline, one stepped forward fire them. */
const clock = (): number => performance.now()

/**
 * The deadlines of one duration, in the order they were armed (so in the order they fall due): one timer,
 * for the head, instead of a timer per statement. What Node does for its own timers, without the Timeout
 * object (and its GC weight) each statement would otherwise cost. The timer is cleared once the list is
 * empty: nothing is left pending when no statement runs.
 */
class Deadlines {
  head: Statement | undefined
  tail: Statement | undefined
  private timer: ReturnType<typeof setTimeout> | undefined
  private readonly onTimer = () => this.fire()
  constructor(readonly ms: number) {}
  add(s: Statement): void {
    s.due = clock() + this.ms
    s.list = this
    s.dprev = this.tail
    s.dnext = undefined
    if (this.tail) this.tail.dnext = s
    else {
      this.head = s
      // An empty list has no timer (remove() cleared it, fire() unset it).
      this.timer = later(this.onTimer, this.ms)
    }
    this.tail = s
  }
  remove(s: Statement): void {
    if (s.dprev) s.dprev.dnext = s.dnext
    else this.head = s.dnext
    if (s.dnext) s.dnext.dprev = s.dprev
    else this.tail = s.dprev
    s.dprev = s.dnext = s.list = undefined
    if (!this.head && this.timer !== undefined) {
      clearTimeout(this.timer)
      this.timer = undefined
    }
  }
  fire(): void {
    this.timer = undefined
    const now = clock()
    try {
      let s = this.head
      while (s && s.due <= now) {
        this.remove(s)
        s.fire()
        s = this.head
      }
    } finally {
      // Whatever one statement's expiry threw, the others keep their timer. What fired may have armed
      // again (a probe's next step): the timer is then set already.
      if (this.head && !this.timer) this.timer = later(this.onTimer, Math.max(1, this.head.due - clock()))
    }
  }
}

/** The deadline lists of one scope, per duration. */
class DeadlineLists {
  private readonly lists = new Map<number, Deadlines>()
  get(ms: number): Deadlines {
    let list = this.lists.get(ms)
    if (!list) {
      list = new Deadlines(ms)
      this.lists.set(ms, list)
    }
    return list
  }
}

/**
 * The process's lists, for the requests of a shared pool on a long-running server. Not on Workers, where a
 * timer belongs to the request that set it and may die with it: there (and for every per-request client)
 * each request has lists of its own.
 */
const processLists = new DeadlineLists()

/** What a statement's deadline does when it falls due. */
const EXPIRE = 0
const ASK = 1

/**
 * One statement a request sent: its cancel, its deadline clock (arm / disarm; COPY streams and cursor
 * fetches start and stop it) and its place in the request's list of running statements. One object per
 * statement, no closures on its usual path.
 */
class Statement implements Settles {
  // The request's running statements (a list: no Map entry to add and delete per statement).
  prev: Statement | undefined
  next: Statement | undefined
  active = true
  // Its deadline list while armed.
  list: Deadlines | undefined
  dprev: Statement | undefined
  dnext: Statement | undefined
  due = 0
  /** Each arm of the clock is a generation: a verdict asked in an older one is ignored. */
  generation = 0
  private action = EXPIRE
  private elapsed = 0
  private since = 0
  private destroy: ReturnType<typeof setTimeout> | undefined
  constructor(
    private readonly run: Running,
    readonly q: any,
    private readonly canceller: ((q: unknown) => unknown) | null,
    /** Asked while the statement is silent (top level, through a pooler with TLS): is the database down? */
    private readonly probe: Probe | undefined,
    /** It has a clock (a queryTimeout, or a probe). */
    readonly clocked: boolean,
  ) {}

  /** Sends a CancelRequest (postgres.js's own `q.cancel()` works only once). */
  cancel(): void {
    const canceller = this.canceller
    if (!canceller) return
    this.run.cancels ??= new Set()
    const inFlight = this.run.cancels
    const p: Promise<unknown> = Promise.resolve()
      .then(() => canceller(this.q))
      .catch(noop)
      .finally(() => inFlight.delete(p))
    inFlight.add(p)
  }

  settled(): void {
    if (!this.active) return
    this.active = false
    if (this.clocked) {
      this.disarm()
      clearTimeout(this.destroy)
    }
    this.run.remove(this)
  }

  disarm(): void {
    this.generation++
    this.list?.remove(this)
  }

  /** The clock runs again (a COPY chunk asked for, a cursor's next fetch), while the statement runs. */
  rearm(): void {
    if (this.active) this.arm()
  }

  // Cancel on the server at the deadline; if the cancel does not land within a second (stalled network,
  // dead pooler), `stuck` destroys the sockets. With a probe, it is asked every afterMs while the statement
  // is silent, then the deadline.
  arm(): void {
    this.disarm()
    const run = this.run
    if (run.expired?.has(this.q) || run.down?.has(this.q)) return
    if (!this.probe) {
      // No probe (direct, in a transaction, …): just the deadline, nothing else per statement.
      this.action = EXPIRE
      run.deadlines(run.queryTimeout * 1000).add(this)
      return
    }
    this.since = Date.now()
    this.elapsed = 0
    this.step()
  }

  private step(): void {
    const full = this.run.queryTimeout * 1000
    const afterMs = this.probe!.afterMs
    if (!full || this.elapsed + afterMs < full) {
      this.action = ASK
      this.run.deadlines(afterMs).add(this)
    } else {
      this.action = EXPIRE
      this.run.deadlines(full - this.elapsed).add(this)
    }
  }

  /** Its deadline list says it fell due. */
  fire(): void {
    if (this.action === EXPIRE) {
      this.expire()
      return
    }
    this.ask(this.generation, this.since)
    this.elapsed += this.probe!.afterMs
    this.step()
  }

  private expire(): void {
    const run = this.run
    run.expired ??= new WeakSet()
    run.expired.add(this.q)
    run.owner.cancelling()
    if (this.active) this.cancel()
    this.destroy = later(() => run.owner.stuck(), CANCEL_GRACE_MS)
  }

  // Silent for p.afterMs: is the pooler's database down? Then the statement only waits in the pooler's
  // queue (nothing runs on a server): destroy the sockets now, CONNECTION_LOST with the pooler's text.
  private ask(g: number, since: number): void {
    const run = this.run
    const q = this.q
    void this.probe!.check(since).then((text) => {
      if (!text || g !== this.generation || !this.active || run.expired?.has(q) || run.down?.has(q)) return
      this.disarm()
      run.down ??= new WeakMap()
      run.down.set(q, text)
      run.owner.cancelling()
      run.owner.stuck()
    })
  }

  // A cursor: each fetch has the deadline, not the whole iteration. A batch delivered stops the clock;
  // asking for the next one (its promise settles) starts it again.
  watchCursor(): void {
    const q = this.q
    const fetched =
      (f: (...a: unknown[]) => unknown) =>
      (...a: unknown[]) => {
        this.disarm()
        const r = f(...a)
        Promise.resolve(r).then(() => this.rearm(), noop)
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
}

/**
 * A request's running statements (a class, not an object literal of closures: V8 may allocate what a
 * literal builds once per request straight in the old generation, where a dead one keeps the whole request
 * alive until the next full GC).
 */
class Running implements Statements {
  private head: Statement | undefined
  private tail: Statement | undefined
  private count = 0
  /** Statements past their deadline (created on first use: most requests never need it). */
  expired: WeakSet<object> | undefined
  /** The pooler's text for statements the probe found waiting on a database that is down. */
  down: WeakMap<object, string> | undefined
  /** CancelRequests sent and not yet answered (their socket not closed). */
  cancels: Set<Promise<unknown>> | undefined
  private waiting: Promise<void> | undefined
  private drained: () => void = noop
  /** The request's own deadline lists (when it does not share the process's). */
  private own: DeadlineLists | undefined

  constructor(
    readonly queryTimeout: number,
    /** What to do when a cancel did not land (stuck), and just before a timed-out statement is cancelled. */
    readonly owner: StatementsOwner,
    private readonly probe: Probe | undefined,
    /** Deadlines in the process's lists (a shared pool's request on a long-running server). */
    private readonly shared: boolean,
  ) {}

  deadlines(ms: number): Deadlines {
    if (this.shared) return processLists.get(ms)
    this.own ??= new DeadlineLists()
    return this.own.get(ms)
  }

  get size(): number {
    return this.count
  }

  track(q: any, probing = false): Statement {
    const p = probing ? this.probe : undefined
    const clocked = !!this.queryTimeout || p !== undefined
    const s = new Statement(this, q, q.canceller ?? null, p, clocked)
    s.prev = this.tail
    if (this.tail) this.tail.next = s
    else this.head = s
    this.tail = s
    this.count++
    if (clocked) {
      s.arm()
      if (q.cursorFn) s.watchCursor()
    }
    return s
  }

  remove(s: Statement): void {
    if (s.prev) s.prev.next = s.next
    else this.head = s.next
    if (s.next) s.next.prev = s.prev
    else this.tail = s.prev
    s.prev = s.next = undefined
    if (--this.count === 0) this.drained()
  }

  private cancelAll(): void {
    for (let s = this.head; s; s = s.next) s.cancel()
  }

  copying(q: any, stream: any): void {
    let clock: Statement | undefined
    for (let s = this.head; s; s = s.next) if (s.q === q) clock = s
    if (!clock?.clocked) return
    const statement = clock
    statement.disarm()
    // postgres.js's COPY streams: a Readable fed by `push` (CopyData) whose `_read` resumes the socket, a
    // Writable whose `_write` / `_final` write to the socket.
    if (typeof stream._read === 'function') {
      const read = stream._read
      const push = stream.push
      stream._read = function (this: unknown, ...a: unknown[]) {
        statement.rearm() // asked for more: the server has queryTimeout to deliver it
        return read.apply(this, a)
      }
      stream.push = function (this: unknown, chunk: unknown, ...a: unknown[]) {
        const more = push.call(this, chunk, ...a)
        // Delivered; the clock runs on only while the reader still wants more.
        chunk !== null && more ? statement.rearm() : statement.disarm()
        return more
      }
    }
    if (typeof stream._write === 'function') {
      const write = stream._write
      stream._write = function (this: unknown, chunk: unknown, enc: unknown, cb: (e?: unknown) => void) {
        statement.rearm()
        return write.call(this, chunk, enc, (e?: unknown) => {
          statement.disarm()
          cb(e)
        })
      }
    }
    if (typeof stream._final === 'function') {
      const final = stream._final
      stream._final = function (this: unknown, ...a: unknown[]) {
        statement.rearm() // the end is written: the server has queryTimeout to confirm it
        return final.apply(this, a)
      }
    }
  }

  timedOut(q: unknown): boolean {
    return !!q && typeof q === 'object' && !!this.expired?.has(q)
  }

  lostText(q: unknown): string | undefined {
    return q && typeof q === 'object' ? this.down?.get(q) : undefined
  }

  quiet(): Promise<void> | undefined {
    const inFlight = this.cancels
    if (!inFlight?.size) return undefined
    this.waiting ??= new Promise<void>((resolve) => {
      const give = later(() => {
        this.owner.stuck() // a cancel still on its way could hit whatever runs next on that connection
        resolve()
      }, CANCEL_GRACE_MS)
      const all = (): Promise<void> =>
        Promise.allSettled([...inFlight]).then(() => (inFlight.size ? all() : undefined))
      void all().then(() => {
        clearTimeout(give)
        resolve()
      })
    }).finally(() => {
      this.waiting = undefined
    })
    return this.waiting
  }

  async cancelUntilSettled(ms: number): Promise<void> {
    if (!this.count) return
    let every = ABORT_CANCEL_EVERY_MS
    let repeat: ReturnType<typeof setTimeout> | undefined
    const again = () => {
      this.cancelAll()
      repeat = later(again, every)
      every *= 2
    }
    again()
    let give: ReturnType<typeof setTimeout> | undefined
    await new Promise<void>((r) => {
      this.drained = r
      give = later(r, ms)
    })
    this.drained = noop
    clearTimeout(repeat)
    clearTimeout(give)
  }
}

/**
 * @param queryTimeout seconds (0: no deadline)
 * @param stuck called when a cancel did not land within 1 s: destroy the sockets
 * @param cancelling called just before a timed-out statement is cancelled (its connection must not be reused)
 * @param probe asked when a statement had no answer for `probe.afterMs`: the pooler's database is down
 *   (its statement waits in the pooler's queue) — then the sockets are destroyed at once (`stuck`)
 * @param shared the deadlines share the process's timers (a shared pool's request, not on Workers)
 *
 * @example
 * ```ts
 * const running = statements(30, () => console.log('destroy the sockets'))
 * declare const q: any
 * const statement = running.track(q)
 * statement.settled()
 * ```
 */
export function statements(
  queryTimeout: number,
  stuck: () => void,
  cancelling: () => void = noop,
  probe?: Probe,
  shared = false,
): Statements {
  return requestStatements(queryTimeout, { stuck, cancelling }, probe, shared)
}

/** What a request's statements call back (`statements()`'s two functions, as methods of one object). */
export interface StatementsOwner {
  /** A cancel did not land within 1 s (or the probe found the database down): destroy the sockets. */
  stuck(): void
  /** A timed-out statement is about to be cancelled: its connection must not be reused. */
  cancelling(): void
}

/** `statements()` for a request client that is its own owner (no closures per request). */
export function requestStatements(
  queryTimeout: number,
  owner: StatementsOwner,
  probe: Probe | undefined,
  shared: boolean,
): Statements {
  return new Running(queryTimeout, owner, probe, shared)
}
