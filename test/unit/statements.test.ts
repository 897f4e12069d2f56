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
    const settled = running.track(q)
    const done = running.cancelUntilSettled(3000)
    await vi.advanceTimersByTimeAsync(750)
    // at 0, 100, 300, 700
    expect(calls).toEqual([0, 100, 300, 700])
    settled()
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
    const settled = running.track(q)
    expect(running.quiet()).toBeUndefined()
    await vi.advanceTimersByTimeAsync(100) // the deadline: the cancel is sent
    expect(calls).toHaveLength(1)
    settled() // the statement finished anyway, before its cancel landed
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
    const settled = running.track(q)
    void running.cancelUntilSettled(50)
    settled()
    const quiet = running.quiet()!
    let over = false
    void quiet.then(() => (over = true))
    await vi.advanceTimersByTimeAsync(999)
    expect(over).toBe(false)
    await vi.advanceTimersByTimeAsync(1)
    expect(over).toBe(true)
    expect(stuck).toHaveBeenCalledTimes(1)
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
    const settled = running.track(query().q)
    expect(unref).toHaveBeenCalledTimes(1)
    settled()
    vi.restoreAllMocks()
  })
})
