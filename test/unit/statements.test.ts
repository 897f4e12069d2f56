/**
 * The running statements of a request without a database: the abort's cancels back off (100, 200, 400 ms …)
 * and stop once the statement settled; a cancel in flight holds `quiet()` until its socket closed, at most
 * 1 s (then `stuck` destroys the sockets); the timers never keep a process alive.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { statements } from '../../src/client/statements'

afterEach(() => {
  vi.useRealTimers()
})

/** A fake postgres.js query whose canceller counts calls and returns `answer()`. */
function query(answer: () => Promise<void> = () => Promise.resolve()) {
  const calls: number[] = []
  const q = {
    canceller: () => {
      calls.push(Date.now())
      return answer()
    },
  }
  return { q, calls }
}

describe('statements', () => {
  it('abort: the cancel is repeated after 100, 200, 400 ms … and stops once the statement settled', async () => {
    vi.useFakeTimers({ now: 0 })
    const running = statements(0, () => {})
    const { q, calls } = query()
    const statement = running.track(q)
    const done = running.cancelUntilSettled(3000)
    await vi.advanceTimersByTimeAsync(750)
    // at 0, 100, 300, 700
    expect(calls).toEqual([0, 100, 300, 700])
    statement.settled()
    await done
    await vi.advanceTimersByTimeAsync(3000)
    expect(calls).toHaveLength(4)
  })

  it('a cancel in flight holds quiet() until it closed', async () => {
    vi.useFakeTimers({ now: 0 })
    const stuck = vi.fn()
    const running = statements(0.1, stuck)
    let close = () => {}
    const { q, calls } = query(() => new Promise<void>((r) => (close = r)))
    const statement = running.track(q)
    expect(running.quiet()).toBeUndefined()
    await vi.advanceTimersByTimeAsync(100) // the deadline: the cancel is sent
    expect(calls).toHaveLength(1)
    statement.settled() // the statement finished anyway, before its cancel landed
    const quiet = running.quiet()
    expect(quiet).toBeInstanceOf(Promise)
    let over = false
    void quiet!.then(() => (over = true))
    await vi.advanceTimersByTimeAsync(300)
    expect(over).toBe(false)
    close()
    await vi.advanceTimersByTimeAsync(0)
    expect(over).toBe(true)
    expect(stuck).not.toHaveBeenCalled()
    expect(running.quiet()).toBeUndefined()
  })

  it('a cancel that never closes: quiet() gives up after 1 s and the sockets are destroyed', async () => {
    vi.useFakeTimers({ now: 0 })
    const stuck = vi.fn()
    const running = statements(0, stuck)
    const { q } = query(() => new Promise<void>(() => {}))
    const statement = running.track(q)
    void running.cancelUntilSettled(50)
    statement.settled()
    const quiet = running.quiet()!
    let over = false
    void quiet.then(() => (over = true))
    await vi.advanceTimersByTimeAsync(999)
    expect(over).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(over).toBe(true)
    expect(stuck).toHaveBeenCalledTimes(1)
  })

  it('each statement gets its own deadline, whatever settled before it (one timer per duration)', async () => {
    vi.useFakeTimers({ now: 0 })
    const running = statements(0.1, () => {})
    const a = query()
    const b = query()
    const c = query()
    const first = running.track(a.q)
    await vi.advanceTimersByTimeAsync(50)
    running.track(b.q)
    expect(vi.getTimerCount()).toBe(1)
    await vi.advanceTimersByTimeAsync(10)
    first.settled() // t=60: the oldest deadline goes; b's (at 150) is still ahead
    await vi.advanceTimersByTimeAsync(80) // t=140
    expect([a.calls, b.calls]).toEqual([[], []])
    await vi.advanceTimersByTimeAsync(10) // t=150
    expect(b.calls).toEqual([150])
    expect(running.timedOut(b.q)).toBe(true)
    expect(running.timedOut(a.q)).toBe(false)
    // Armed again once the list was empty: a full deadline of its own.
    await vi.advanceTimersByTimeAsync(1000) // t=1150
    running.track(c.q)
    await vi.advanceTimersByTimeAsync(99)
    expect(c.calls).toEqual([])
    await vi.advanceTimersByTimeAsync(1)
    expect(c.calls).toEqual([1250])
  })

  it('shared (a shared pool on a long-running server): the statements of two requests share one timer', async () => {
    vi.useFakeTimers({ now: 0 })
    const one = statements(
      0.2,
      () => {},
      () => {},
      undefined,
      true,
    )
    const two = statements(
      0.2,
      () => {},
      () => {},
      undefined,
      true,
    )
    const a = query()
    const b = query()
    const first = one.track(a.q)
    await vi.advanceTimersByTimeAsync(100)
    const second = two.track(b.q)
    expect(vi.getTimerCount()).toBe(1)
    first.settled()
    await vi.advanceTimersByTimeAsync(150) // t=250: b's deadline (at 300) still ahead
    expect(b.calls).toEqual([])
    await vi.advanceTimersByTimeAsync(50)
    expect(b.calls).toEqual([300])
    expect(vi.getTimerCount()).toBe(1) // b's cancel did not land yet: its grace timer (then `stuck`)
    second.settled()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('not shared (per-request clients, and a pool on Workers): each request has timers of its own', async () => {
    vi.useFakeTimers({ now: 0 })
    const one = statements(0.2, () => {})
    const two = statements(0.2, () => {})
    const a = one.track(query().q)
    const b = two.track(query().q)
    expect(vi.getTimerCount()).toBe(2)
    a.settled()
    b.settled()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('the deadline runs on a monotonic clock: the wall clock stepped back an hour does not hold it', async () => {
    vi.useFakeTimers({ now: 1e12 })
    const running = statements(1, () => {})
    const { q, calls } = query()
    running.track(q)
    await vi.advanceTimersByTimeAsync(500)
    vi.setSystemTime(1e12 - 3_600_000) // Date.now() goes back; performance.now() does not
    await vi.advanceTimersByTimeAsync(499)
    expect(running.timedOut(q)).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(running.timedOut(q)).toBe(true)
    expect(calls).toHaveLength(1)
  })

  it('a statement settled leaves no timer behind', () => {
    vi.useFakeTimers({ now: 0 })
    const running = statements(30, () => {})
    const statement = running.track(query().q)
    expect(vi.getTimerCount()).toBe(1)
    statement.settled()
    expect(vi.getTimerCount()).toBe(0)
  })

  it('the deadline timer does not keep the process alive', () => {
    const unref = vi.fn()
    const real = globalThis.setTimeout
    vi.spyOn(globalThis, 'setTimeout').mockImplementation(((f: () => void, ms: number) => {
      const t = real(f, ms)
      const orig = t.unref.bind(t)
      t.unref = () => {
        unref()
        return orig()
      }
      return t
    }) as typeof setTimeout)
    const running = statements(30, () => {})
    const statement = running.track(query().q)
    expect(unref).toHaveBeenCalledTimes(1)
    statement.settled()
    vi.restoreAllMocks()
  })
})

describe('the down probe (a statement silent through a pooler)', () => {
  /** A probe whose verdicts are scripted; records when it was asked and since when. */
  function scripted(afterMs: number, verdict: (n: number) => string | undefined) {
    const asks: { at: number; since: number }[] = []
    return {
      asks,
      probe: {
        afterMs,
        check: (since: number) => {
          asks.push({ at: Date.now(), since })
          return Promise.resolve(verdict(asks.length))
        },
      },
    }
  }

  it('asks every afterMs while silent, then the deadline fires; a settled statement asks nothing more', async () => {
    vi.useFakeTimers({ now: 0 })
    const { probe, asks } = scripted(1000, () => undefined)
    const stuck = vi.fn()
    const running = statements(3.5, stuck, () => {}, probe)
    const { q, calls } = query()
    const statement = running.track(q, true)
    await vi.advanceTimersByTimeAsync(3400)
    expect(asks.map((a) => a.at)).toEqual([1000, 2000, 3000])
    expect(asks.every((a) => a.since === 0)).toBe(true)
    expect(running.timedOut(q)).toBe(false)
    await vi.advanceTimersByTimeAsync(200)
    expect(running.timedOut(q)).toBe(true) // the deadline after the probes: 3.5 s, not 3.5 s + probes
    expect(calls).toEqual([3500])
    statement.settled()
    await vi.advanceTimersByTimeAsync(5000)
    expect(asks).toHaveLength(3)
    expect(stuck).not.toHaveBeenCalled()
  })

  it('a "down" verdict destroys the sockets at once and names the pooler\'s text; no cancel is sent', async () => {
    vi.useFakeTimers({ now: 0 })
    const { probe } = scripted(1000, (n) => (n === 2 ? 'server login has been failing' : undefined))
    const stuck = vi.fn()
    const cancelling = vi.fn()
    const running = statements(0, stuck, cancelling, probe) // queryTimeout 0: probes only
    const { q, calls } = query()
    running.track(q, true)
    await vi.advanceTimersByTimeAsync(1500)
    expect(stuck).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(600)
    expect(stuck).toHaveBeenCalledTimes(1)
    expect(cancelling).toHaveBeenCalledTimes(1)
    expect(running.lostText(q)).toBe('server login has been failing')
    expect(running.timedOut(q)).toBe(false)
    expect(calls).toEqual([])
    await vi.advanceTimersByTimeAsync(5000)
    expect(stuck).toHaveBeenCalledTimes(1)
  })

  it('never for statements tracked without probing (inside a transaction), nor past a re-armed clock', async () => {
    vi.useFakeTimers({ now: 0 })
    let release: (v: string) => void = () => {}
    const slow = new Promise<string>((r) => {
      release = r
    })
    const asks: number[] = []
    const probe = {
      afterMs: 1000,
      check: (since: number) => {
        asks.push(since)
        return slow
      },
    }
    const stuck = vi.fn()
    const running = statements(0, stuck, () => {}, probe)
    const inTx = query().q
    running.track(inTx, false)
    // A COPY-like statement: the probe is asked, then data arrives (the clock is stopped and re-armed).
    const copy = { canceller: null, _read() {}, push: () => true } as any
    const q = query().q
    running.track(q, true)
    await vi.advanceTimersByTimeAsync(1000)
    expect(asks).toEqual([0])
    running.copying(q, copy)
    copy._read() // asked for more: a new generation of the clock
    release('server login has been failing') // the old verdict arrives late
    await vi.advanceTimersByTimeAsync(10)
    expect(stuck).not.toHaveBeenCalled()
    expect(running.lostText(q)).toBeUndefined()
    expect(running.lostText(inTx)).toBeUndefined()
  })
})
