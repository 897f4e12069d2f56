/**
 * Full-screen output for `top` on a terminal: the alternate screen with the cursor hidden while it runs,
 * and both restored on every way out (Ctrl-C, SIGTERM, SIGHUP, an exception, a normal exit).
 */
import { writeSync } from 'node:fs'

const ENTER = '\x1b[?1049h\x1b[?25l'
const LEAVE = '\x1b[?25h\x1b[?1049l'

/** A full-screen session; `restore()` is idempotent and synchronous (safe in an `exit` handler). */
export interface Screen {
  draw(lines: string[]): void
  restore(): void
}

/**
 * Enters the alternate screen; `onStop` runs once on SIGINT, SIGTERM or SIGHUP (after the terminal is
 * restored).
 *
 * @example
 * ```ts
 * let stopped = false
 * const screen = fullScreen(() => {
 *   stopped = true
 * })
 * screen.draw(['hello'])
 * screen.restore()
 * ```
 */
export function fullScreen(onStop: (signal: NodeJS.Signals) => void): Screen {
  let active = true
  const restore = () => {
    if (!active) return
    active = false
    try {
      writeSync(1, LEAVE)
    } catch {}
    process.off('exit', restore)
    for (const sig of SIGNALS) process.off(sig, stop)
  }
  const stop = (sig: NodeJS.Signals) => {
    restore()
    onStop(sig)
  }
  const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
  for (const sig of SIGNALS) process.on(sig, stop)
  process.on('exit', restore)
  writeSync(1, ENTER)
  return {
    draw(lines) {
      if (!active) return
      // Home, each line cleared to its end, then everything below cleared: no flicker, no leftovers.
      writeSync(1, `\x1b[H${lines.map((l) => `${l}\x1b[K`).join('\n')}\n\x1b[J`)
    },
    restore,
  }
}
