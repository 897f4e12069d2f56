/**
 * `hono-pooler doctor [URL]`: runs the checks in order, one line each (or one JSON document with
 * `--json`), within one deadline (`--timeout`). Exit code 0 when nothing failed, 1 when a check failed.
 */
import { redactUrl, scrub } from '../redact'
import { authCheck, budgetCheck, connectionsCheck, queryCheck } from './checks-db'
import { dnsCheck, ipv6Check, tcpCheck, urlCheck } from './checks-net'
import { tlsCheck } from './checks-tls'
import { type DoctorOptions, type DoctorState, newState } from './context'
import { type CheckId, type CheckResult, errText, formatCheck, type Io, ms, paint, spinner } from './output'
import { pipelineCheck } from './pipeline'

/** What `--json` prints. */
export interface DoctorReport {
  url: string
  checks: CheckResult[]
  server?: { version: string; maxConnections: number; used: number; groups: unknown[] }
  budget?: Record<string, unknown>
}

type Check = (s: DoctorState) => CheckResult | Promise<CheckResult>

const CHECKS: [CheckId, Check][] = [
  ['url', urlCheck],
  ['dns', dnsCheck],
  ['ipv6', ipv6Check],
  ['tcp', tcpCheck],
  ['tls', tlsCheck],
  ['auth', authCheck],
  ['query', queryCheck],
  ['connections', connectionsCheck],
  ['budget', budgetCheck],
  ['pipeline', pipelineCheck],
]

/**
 * @example
 * ```ts
 * import { processIo } from './output'
 * const url = 'postgres://app:pw@127.0.0.1:6432/app'
 * process.exitCode = await doctor({ url, json: false, timeout: 10, dataApi: false, instances: 1, probePipeline: false }, processIo())
 * ```
 */
export async function doctor(opts: DoctorOptions, io: Io): Promise<number> {
  const s = newState(opts)
  const started = performance.now()
  // Defence in depth: no line leaves without the password masked (our own text never contains it).
  const clean = (text: string) => (s.password.length >= 6 ? scrub(text, s.password) : text)
  const spin = spinner(!opts.json && Boolean(process.stderr.isTTY))
  const checks: CheckResult[] = []
  let budget: Record<string, unknown> | undefined
  if (!opts.json) io.out(`${paint(io, 'bold', 'hono-pooler doctor')} ${redactUrl(opts.url)}\n`)
  try {
    for (const [id, check] of CHECKS) {
      if (id === 'pipeline' && !opts.probePipeline) continue
      spin.start(id)
      let r: CheckResult & { budget?: Record<string, unknown> }
      try {
        r = await check(s)
      } catch (e) {
        r = { id, status: 'fail', message: `unexpected error: ${errText(e)}` }
      }
      spin.stop()
      const { budget: b, ...result } = r
      if (b) budget = b
      if (result.ms !== undefined) result.ms = Math.round(result.ms * 10) / 10
      result.message = clean(result.message)
      if (result.fix) result.fix = clean(result.fix)
      checks.push(result)
      if (!opts.json) io.out(`${formatCheck(result, io)}\n`)
    }
  } finally {
    spin.stop()
    await s.client?.close(0).catch(() => {})
  }
  const failed = checks.filter((c) => c.status === 'fail').length
  if (opts.json) {
    const report: DoctorReport = { url: redactUrl(opts.url), checks }
    if (s.stats)
      report.server = {
        version: s.serverVersion ?? '',
        maxConnections: s.stats.maxConnections,
        used: s.stats.used,
        groups: s.stats.groups,
      }
    if (budget) report.budget = budget
    io.out(`${clean(JSON.stringify(report, null, 2))}\n`)
  } else {
    const count = (st: string) => checks.filter((c) => c.status === st).length
    const took = ms(performance.now() - started)
    const summary = `${count('ok')} ok, ${count('warn')} warning(s), ${failed} failed, ${count('skip')} skipped in ${took}`
    io.out(`${paint(io, failed ? 'red' : 'green', summary)}\n`)
  }
  return failed ? 1 : 0
}
