/**
 * One request's database timings (what Server-Timing reports) and, when OpenTelemetry is on, its spans and
 * metrics. Created by the middleware only when `serverTiming` or `openTelemetry` is set.
 */
import type { UrlInfo } from '../url'
import type { ClientObserver } from './observer'
import type { OpenTelemetry } from './otel'

const now = () => performance.now()

/**
 * @example
 * ```ts
 * import { classifyUrl } from '../url'
 *
 * const t = new RequestTelemetry(classifyUrl('postgres://u:pw@127.0.0.1:6432/app'), undefined)
 * t.statement('select $1')()
 * t.serverTiming() // 'db;dur=0.1;desc="1 query"'
 * ```
 */
export class RequestTelemetry implements ClientObserver {
  queries = 0
  /** Milliseconds spent in statements (summed: concurrent statements each count). */
  queryMs = 0
  /** Milliseconds the first connection took to set up, once known. */
  connectMs: number | undefined
  private connectStart: number | undefined
  private connectStartEpoch = 0
  private connections = 0

  constructor(
    private readonly info: UrlInfo,
    private readonly otel: OpenTelemetry | undefined,
  ) {}

  statement(text: string): (error?: unknown) => void {
    this.connecting()
    this.queries++
    const start = now()
    const span = this.otel?.startStatement(text, this.info)
    return (error?: unknown) => {
      const ms = now() - start
      this.queryMs += ms
      this.otel?.endStatement(span, text, this.info, ms, error)
    }
  }

  connecting(): void {
    if (this.connectStart !== undefined) return
    this.connectStart = now()
    this.connectStartEpoch = Date.now()
  }

  connected(): void {
    if (this.connectStart === undefined || this.connectMs !== undefined) return
    this.connectMs = now() - this.connectStart
    this.connections++
    this.otel?.connection(this.info, this.connectStartEpoch, this.connectMs)
  }

  closed(): void {
    this.otel?.closed(this.info, this.connections)
    this.connections = 0
  }

  /** The `Server-Timing` value: `db-connect;dur=…` (when a connection was opened), `db;dur=…;desc="N queries"`. */
  serverTiming(): string {
    const parts: string[] = []
    if (this.connectMs !== undefined) parts.push(`db-connect;dur=${this.connectMs.toFixed(1)}`)
    parts.push(
      `db;dur=${this.queryMs.toFixed(1)};desc="${this.queries} ${this.queries === 1 ? 'query' : 'queries'}"`,
    )
    return parts.join(', ')
  }
}
