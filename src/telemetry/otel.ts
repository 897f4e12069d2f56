/**
 * OpenTelemetry, following the database semantic conventions: a CLIENT span per statement
 * (`db.system.name`, `db.query.text` as the `$n` template — never values —, `db.operation.name`,
 * `db.namespace`, `server.address`, `server.port`, `error.type` and an error status on failure), a span for
 * connection setup, and the metrics `db.client.operation.duration`, `db.client.connection.create_time`,
 * `db.client.connection.count`. `@opentelemetry/api` is an optional peer: it is imported (lazily, once)
 * only when `pooler({ openTelemetry: true })` asks for it, or handed over as `pooler({ openTelemetry: api })`
 * (bundled runtimes such as Workers). Without it nothing is loaded.
 */
import { poolStats } from '../pool/live'
import type { UrlInfo } from '../url'

/** The parts of `@opentelemetry/api` hono-pooler uses (pass the module itself: `import * as api from …`). */
export interface OpenTelemetryApi {
  trace: { getTracer(name: string, version?: string): any }
  metrics: { getMeter(name: string, version?: string): any }
}

const SPAN_KIND_CLIENT = 2 // SpanKind.CLIENT
const STATUS_ERROR = 2 // SpanStatusCode.ERROR
const SECONDS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10]

/** The first keyword of a statement, upper-cased (`SELECT`, `INSERT`, `BEGIN`, …), after comments. */
export function operationName(text: string): string | undefined {
  const m = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*([A-Za-z]+)/.exec(text)
  return m?.[1]?.toUpperCase()
}

/** `error.type`: the SQLSTATE or hono-pooler code when there is one, else the error's class. */
function errorType(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code
  if (typeof code === 'string' && code) return code
  const name = (error as { name?: unknown } | undefined)?.name
  return typeof name === 'string' && name ? name : '_OTHER'
}

const base = (info: UrlInfo) => ({
  'db.system.name': 'postgresql',
  'db.namespace': info.database,
  'server.address': info.host,
  'server.port': info.port,
})

/** Tracer and instruments for one API object. */
export class OpenTelemetry {
  private readonly tracer: any
  private readonly duration: any
  private readonly createTime: any
  /** Connections of per-request clients open now, by pool name (all `used`: a request's own). */
  private readonly perRequest = new Map<string, number>()

  constructor(api: OpenTelemetryApi) {
    this.tracer = api.trace.getTracer('hono-pooler')
    const meter = api.metrics.getMeter('hono-pooler')
    this.duration = meter.createHistogram('db.client.operation.duration', {
      unit: 's',
      description: 'Duration of database client operations.',
      advice: { explicitBucketBoundaries: SECONDS },
    })
    this.createTime = meter.createHistogram('db.client.connection.create_time', {
      unit: 's',
      description: 'The time it took to create a new connection.',
      advice: { explicitBucketBoundaries: SECONDS },
    })
    // Observed when the metrics are read: per-request clients' connections (used), and every shared
    // pool's idle and used connections (`poolStats()`).
    meter
      .createObservableUpDownCounter('db.client.connection.count', {
        unit: '{connection}',
        description:
          'The number of connections that are currently in state described by the state attribute.',
      })
      .addCallback((result: { observe(value: number, attributes: Record<string, string>): void }) => {
        for (const [name, n] of this.perRequest)
          result.observe(n, { 'db.client.connection.pool.name': name, 'db.client.connection.state': 'used' })
        for (const p of poolStats()) {
          const name = `${p.host} (${p.mode} pool)`
          result.observe(p.idle, {
            'db.client.connection.pool.name': name,
            'db.client.connection.state': 'idle',
          })
          result.observe(p.inUse, {
            'db.client.connection.pool.name': name,
            'db.client.connection.state': 'used',
          })
        }
      })
  }

  startStatement(text: string, info: UrlInfo): any {
    const operation = operationName(text)
    return this.tracer.startSpan(operation ?? 'postgresql', {
      kind: SPAN_KIND_CLIENT,
      attributes: {
        ...base(info),
        'db.query.text': text,
        ...(operation ? { 'db.operation.name': operation } : {}),
      },
    })
  }

  endStatement(span: any, text: string, info: UrlInfo, ms: number, error?: unknown): void {
    const operation = operationName(text)
    const attributes: Record<string, string | number> = {
      ...base(info),
      ...(operation ? { 'db.operation.name': operation } : {}),
    }
    if (error !== undefined) {
      const type = errorType(error)
      attributes['error.type'] = type
      if (/^[0-9A-Z]{5}$/.test(type)) attributes['db.response.status_code'] = type
      span?.setAttributes({
        'error.type': type,
        ...('db.response.status_code' in attributes ? { 'db.response.status_code': type } : {}),
      })
      // The status says what failed, never the message (a Postgres message may quote values).
      span?.setStatus({ code: STATUS_ERROR, message: type })
    }
    span?.end()
    this.duration.record(ms / 1000, attributes)
  }

  connection(info: UrlInfo, startEpochMs: number, ms: number): void {
    const span = this.tracer.startSpan('postgresql connect', {
      kind: SPAN_KIND_CLIENT,
      startTime: startEpochMs,
      attributes: base(info),
    })
    span.end(startEpochMs + ms)
    const pool = { 'db.client.connection.pool.name': poolName(info) }
    this.createTime.record(ms / 1000, pool)
    const name = poolName(info)
    this.perRequest.set(name, (this.perRequest.get(name) ?? 0) + 1)
  }

  closed(info: UrlInfo, connections: number): void {
    if (!connections) return
    const name = poolName(info)
    this.perRequest.set(name, (this.perRequest.get(name) ?? 0) - connections)
  }
}

const poolName = (info: UrlInfo) => `${info.host}:${info.port}/${info.database}`

const instances = new WeakMap<object, OpenTelemetry>()
let imported: Promise<OpenTelemetryApi | undefined> | undefined
let warned = false

/**
 * The OpenTelemetry instance for `pooler({ openTelemetry })`: the API handed over, or `@opentelemetry/api`
 * imported once (undefined, with one warning, when it is not installed).
 *
 * @example
 * ```ts
 * const otel = await openTelemetry(true) // undefined without @opentelemetry/api
 * ```
 */
export async function openTelemetry(option: true | OpenTelemetryApi): Promise<OpenTelemetry | undefined> {
  const spec = '@opentelemetry/api' // not an import statement: bundlers leave the optional peer alone
  if (option === true && !imported)
    imported = import(spec).then(
      (m) => (m.trace ? m : m.default) as OpenTelemetryApi,
      () => undefined,
    )
  const api = option === true ? await imported : option
  if (!api) {
    if (!warned)
      console.warn('[hono-pooler] openTelemetry: @opentelemetry/api is not installed — no spans or metrics')
    warned = true
    return undefined
  }
  let instance = instances.get(api)
  if (!instance) {
    instance = new OpenTelemetry(api)
    instances.set(api, instance)
  }
  return instance
}
