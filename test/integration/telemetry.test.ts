/**
 * Server-Timing and OpenTelemetry against the local PgBouncer: the header on responses sent whole (next
 * to hono/timing's), none on streamed ones; spans and metrics following the database semantic conventions,
 * checked with the SDK's in-memory exporter and a metric reader — never a parameter value anywhere.
 */
import { AsyncLocalStorage } from 'node:async_hooks'
import * as api from '@opentelemetry/api'
import { AggregationTemporality, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  type ReadableSpan,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base'
import { Hono } from 'hono'
import { stream } from 'hono/streaming'
import { timing } from 'hono/timing'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { closePools, type PoolerOptions, type PoolerVariables, pooler } from '../../src'
import { stack, waitForNoClients } from '../support/stack'

const APP = 'hp-telemetry'
const SECRET_VALUE = 'value-that-must-never-appear-7f3a'

function appWith(options: PoolerOptions) {
  const app = new Hono<{ Variables: PoolerVariables }>()
  app.use(timing())
  app.use(pooler({ url: stack.databaseUrl, applicationName: APP, ...options }))
  app.get('/two', async (c) => {
    await c.var.sql`select ${SECRET_VALUE}::text as v`
    await c.var.sql`select 1 as one`
    return c.json({ ok: true })
  })
  app.get('/none', (c) => c.text('no database'))
  app.get('/fail', async (c) => {
    const code = await c.var.sql`select * from no_such_table where v = ${SECRET_VALUE}`.then(
      () => null,
      (e: { code: string }) => e.code,
    )
    return c.json({ code })
  })
  app.get('/stream', (c) =>
    stream(c, async (out) => {
      const [row] = await c.var.sql`select 1 as one`
      await out.write(JSON.stringify(row))
    }),
  )
  return app
}

describe('Server-Timing', () => {
  it('reports connection setup and the statements, next to hono/timing', async () => {
    const res = await appWith({ serverTiming: true }).request('/two')
    expect(res.status).toBe(200)
    const header = res.headers.get('server-timing') ?? ''
    expect(header).toMatch(/(^|, )db-connect;dur=\d+(\.\d)?(,|$)/)
    expect(header).toMatch(/(^|, )db;dur=\d+(\.\d)?;desc="2 queries"(,|$)/)
    expect(header).toMatch(/(^|, ?)total;dur=/) // hono/timing's own entry survives
    expect(await waitForNoClients(APP)).toEqual([])
  })

  it('a request without statements: 0 queries, no connection', async () => {
    const header = (await appWith({ serverTiming: true }).request('/none')).headers.get('server-timing') ?? ''
    expect(header).toContain('db;dur=0.0;desc="0 queries"')
    expect(header).not.toContain('db-connect')
  })

  it('nothing on streamed responses, nothing without the option', async () => {
    const streamed = await appWith({ serverTiming: true }).request('/stream')
    expect(await streamed.text()).toBe('{"one":1}')
    expect(streamed.headers.get('server-timing') ?? '').not.toMatch(/(^|, )db/)
    const off = await appWith({}).request('/two')
    expect(off.headers.get('server-timing') ?? '').not.toMatch(/(^|, )db/)
    expect(await waitForNoClients(APP)).toEqual([])
  })
})

class TestReader extends MetricReader {
  constructor() {
    super({ aggregationTemporalitySelector: () => AggregationTemporality.CUMULATIVE })
  }
  protected async onForceFlush() {}
  protected async onShutdown() {}
}

describe('OpenTelemetry', () => {
  const spans = new InMemorySpanExporter()
  const reader = new TestReader()
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] })
  const meterProvider = new MeterProvider({ readers: [reader] })

  beforeAll(() => {
    // A context manager on AsyncLocalStorage (what @opentelemetry/context-async-hooks provides).
    const als = new AsyncLocalStorage<api.Context>()
    api.context.setGlobalContextManager({
      active: () => als.getStore() ?? api.ROOT_CONTEXT,
      with: (ctx, fn, thisArg, ...args) => als.run(ctx, () => fn.apply(thisArg, args)),
      bind: (_ctx, target) => target,
      enable() {
        return this
      },
      disable() {
        return this
      },
    })
    api.trace.setGlobalTracerProvider(tracerProvider)
    api.metrics.setGlobalMeterProvider(meterProvider)
  })
  afterAll(async () => {
    api.context.disable()
    api.trace.disable()
    api.metrics.disable()
    await meterProvider.shutdown()
    await tracerProvider.shutdown()
  })

  const attrs = (s: ReadableSpan) => s.attributes
  const metric = async (name: string) => {
    const { resourceMetrics } = await reader.collect()
    return resourceMetrics.scopeMetrics
      .filter((s) => s.scope.name === 'hono-pooler')
      .flatMap((s) => s.metrics)
      .find((m) => m.descriptor.name === name)
  }

  for (const [how, option] of [
    ['openTelemetry: true (the optional peer, imported lazily)', true],
    ['openTelemetry: api (the module handed over)', api],
  ] as const)
    it(`a span per statement and one for connection setup — ${how}`, async () => {
      spans.reset()
      const res = await appWith({ openTelemetry: option }).request('/two')
      expect(res.status).toBe(200)
      const finished = spans.getFinishedSpans()
      const statements = finished.filter((s) => s.name === 'SELECT')
      expect(statements.map((s) => attrs(s)['db.query.text'])).toEqual([
        'select $1::text as v',
        'select 1 as one',
      ])
      for (const s of statements) {
        expect(s.kind).toBe(api.SpanKind.CLIENT)
        expect(attrs(s)).toMatchObject({
          'db.system.name': 'postgresql',
          'db.operation.name': 'SELECT',
          'db.namespace': 'app',
          'server.address': '127.0.0.1',
          'server.port': Number(new URL(stack.databaseUrl).port),
        })
        expect(s.status.code).toBe(api.SpanStatusCode.UNSET)
      }
      const connect = finished.filter((s) => s.name === 'postgresql connect')
      expect(connect).toHaveLength(1)
      expect(JSON.stringify(finished.map((s) => [s.name, s.attributes, s.status]))).not.toContain(
        SECRET_VALUE,
      )
      expect(await waitForNoClients(APP)).toEqual([])
    })

  it('a failed statement: error.type (the SQLSTATE) and an error status, no message with values', async () => {
    spans.reset()
    expect(await (await appWith({ openTelemetry: api }).request('/fail')).json()).toEqual({ code: '42P01' })
    const [span] = spans.getFinishedSpans().filter((s) => s.name === 'SELECT')
    expect(span!.attributes).toMatchObject({
      'error.type': '42P01',
      'db.response.status_code': '42P01',
      'db.query.text': 'select * from no_such_table where v = $1',
    })
    expect(span!.status).toEqual({ code: api.SpanStatusCode.ERROR, message: '42P01' })
    expect(JSON.stringify([span!.attributes, span!.status, span!.events])).not.toContain(SECRET_VALUE)
  })

  it('records db.client.operation.duration, connection create_time and count', async () => {
    await appWith({ openTelemetry: api }).request('/two')
    await waitForNoClients(APP)
    const duration = await metric('db.client.operation.duration')
    expect(duration?.descriptor.unit).toBe('s')
    const points = duration!.dataPoints as { attributes: Record<string, unknown>; value: { count: number } }[]
    const select = points.find(
      (p) => p.attributes['db.operation.name'] === 'SELECT' && !p.attributes['error.type'],
    )
    expect(select?.value.count).toBeGreaterThanOrEqual(2)
    expect(points.some((p) => p.attributes['error.type'] === '42P01')).toBe(true)
    const create = await metric('db.client.connection.create_time')
    expect((create!.dataPoints[0]!.value as { count: number }).count).toBeGreaterThanOrEqual(1)
    const count = await metric('db.client.connection.count')
    // Every request's connection was counted when set up and uncounted when its client closed.
    expect(count!.dataPoints.map((p) => p.value)).toEqual([0])
    expect(count!.dataPoints[0]!.attributes['db.client.connection.state']).toBe('used')
  })

  it("with a shared pool, db.client.connection.count reports the pool's idle and used connections", async () => {
    const app = appWith({ openTelemetry: api, pool: { size: 2, overflow: 0, checkBudget: false } })
    const points = async () =>
      ((await metric('db.client.connection.count'))?.dataPoints ?? [])
        .map((p): Record<string, unknown> => ({ ...p.attributes, value: p.value }))
        .filter((p) => String(p['db.client.connection.pool.name']).endsWith('(transaction pool)'))
    try {
      expect((await app.request('/two')).status).toBe(200)
      const afterRequest = await points()
      expect(afterRequest).toContainEqual(
        expect.objectContaining({ 'db.client.connection.state': 'used', value: 0 }),
      )
      const idle = afterRequest.find((p) => p['db.client.connection.state'] === 'idle')
      expect(idle?.value).toBeGreaterThanOrEqual(1)
    } finally {
      await closePools({ timeout: 1 })
    }
  })

  it("statement spans are children of the span active where they are awaited (the handler's)", async () => {
    spans.reset()
    const app = new Hono<{ Variables: PoolerVariables }>()
    app.use(pooler({ url: stack.databaseUrl, applicationName: APP, openTelemetry: api }))
    app.get('/', (c) =>
      api.trace.getTracer('test').startActiveSpan('handler', async (span) => {
        await c.var.sql`select 1 as one`
        span.end()
        return c.text('ok')
      }),
    )
    expect(await (await app.request('/')).text()).toBe('ok')
    const finished = spans.getFinishedSpans()
    const handler = finished.find((s) => s.name === 'handler')!
    const select = finished.find((s) => s.name === 'SELECT')!
    expect(select.spanContext().traceId).toBe(handler.spanContext().traceId)
    expect(select.parentSpanContext?.spanId).toBe(handler.spanContext().spanId)
  })

  it('costs nothing when off: no span, no metric', async () => {
    spans.reset()
    await appWith({}).request('/two')
    expect(spans.getFinishedSpans()).toEqual([])
  })
})
