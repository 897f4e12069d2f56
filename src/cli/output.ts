/**
 * What the commands print: the check result type, one line per check (`✓ name — finding — what to do`),
 * colours only on a terminal (and never with `NO_COLOR`), and the progress spinner on stderr.
 */

/** The check ids, in the order `doctor` runs them (scripts rely on these exact names). */
export const CHECK_IDS = [
  'url',
  'dns',
  'ipv6',
  'tcp',
  'tls',
  'auth',
  'query',
  'connections',
  'budget',
  'pipeline',
] as const
export type CheckId = (typeof CHECK_IDS)[number]
export type Status = 'ok' | 'warn' | 'fail' | 'skip'

/** One check's result, as `--json` prints it. Never contains a password. */
export interface CheckResult {
  id: CheckId
  status: Status
  message: string
  fix?: string
  ms?: number
}

/** Where a command writes: stdout for results, stderr for progress and usage errors. */
export interface Io {
  out: (text: string) => void
  err: (text: string) => void
  /** stdout is a terminal: colours, the spinner, `top`'s full-screen frames. */
  tty: boolean
  color: boolean
}

/**
 * The process's own streams.
 *
 * @example
 * ```ts
 * const io = processIo()
 * io.out('hello\n')
 * ```
 */
export function processIo(): Io {
  const tty = Boolean(process.stdout.isTTY)
  return {
    out: (t) => void process.stdout.write(t),
    err: (t) => void process.stderr.write(t),
    tty,
    color: tty && !process.env.NO_COLOR && process.env.TERM !== 'dumb',
  }
}

const CODES = { red: 31, green: 32, yellow: 33, dim: 2, bold: 1, cyan: 36 } as const
export type Style = keyof typeof CODES

/**
 * Wraps text in an ANSI style when colour is on.
 *
 * @example
 * ```ts
 * paint(processIo(), 'green', '✓') // '\x1b[32m✓\x1b[0m' on a terminal, '✓' otherwise
 * ```
 */
export function paint(io: Pick<Io, 'color'>, style: Style, text: string): string {
  return io.color ? `\x1b[${CODES[style]}m${text}\x1b[0m` : text
}

const SYMBOL: Record<Status, [string, Style]> = {
  ok: ['✓', 'green'],
  warn: ['!', 'yellow'],
  fail: ['✗', 'red'],
  skip: ['-', 'dim'],
}

/**
 * One line per check: `✓ name — finding — what to do`.
 *
 * @example
 * ```ts
 * formatCheck({ id: 'dns', status: 'ok', message: '127.0.0.1 (A)' }, { color: false }) // '✓ dns          — 127.0.0.1 (A)'
 * ```
 */
export function formatCheck(r: CheckResult, io: Pick<Io, 'color'>): string {
  const [symbol, style] = SYMBOL[r.status]
  const name = r.id.padEnd(12)
  const fix = r.fix ? ` — ${paint(io, 'cyan', r.fix)}` : ''
  return `${paint(io, style, symbol)} ${paint(io, 'bold', name)} — ${r.message}${fix}`
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏']

/** A one-line spinner on stderr while a network check runs (only when stderr is a terminal). */
export interface Spinner {
  start(label: string): void
  stop(): void
}

/**
 * @example
 * ```ts
 * const s = spinner()
 * s.start('dns')
 * s.stop()
 * ```
 */
export function spinner(enabled = Boolean(process.stderr.isTTY)): Spinner {
  let timer: ReturnType<typeof setInterval> | undefined
  const clear = () => process.stderr.write('\r\x1b[2K')
  return {
    start(label) {
      if (!enabled) return
      this.stop()
      let i = 0
      const draw = () => process.stderr.write(`\r\x1b[2K${FRAMES[i++ % FRAMES.length]} ${label} …`)
      draw()
      timer = setInterval(draw, 80)
      timer.unref()
    },
    stop() {
      if (!timer) return
      clearInterval(timer)
      timer = undefined
      clear()
    },
  }
}

/**
 * Milliseconds with one decimal under 10 ms, whole above.
 *
 * @example
 * ```ts
 * ms(1.234) // '1.2 ms'
 * ```
 */
export function ms(n: number): string {
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ms`
}

/**
 * The error's code or message, one line (never a stack).
 *
 * @example
 * ```ts
 * errText(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' })) // 'ECONNREFUSED'
 * ```
 */
export function errText(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown }
  if (typeof err?.code === 'string' && /^E[A-Z]+$/.test(err.code)) return err.code
  return String(err?.message ?? e).split('\n')[0] as string
}
