/**
 * The notes API: one Hono app, mounted unchanged on Cloudflare Workers (workers/index.ts), Vercel functions
 * (vercel/api/[[...route]].ts) and a stationary Node server (node/server.ts).
 *
 *   GET  /            { name, mode }: no query, so no connection is opened (the client is lazy)
 *   GET  /now         { now } from the database
 *   POST /notes       { text } (1–500 chars) → 201 { id, text, created_at }; else 400 INVALID_REQUEST
 *                     (with the zod issues when the JSON does not validate)
 *   GET  /notes       ?limit=1..100 (default 20), newest first
 *   GET  /notes/:id   the note, or 404
 *   GET  /export      every note as NDJSON, streamed from a cursor while the response is being sent
 *
 * Every error is JSON: { error: { code, message } }.
 */
import { zValidator } from '@hono/zod-validator'
import { type Context, Hono } from 'hono'
import { env } from 'hono/adapter'
import { HTTPException } from 'hono/http-exception'
import { stream } from 'hono/streaming'
import { z } from 'zod'
// In your own project: `from 'hono-pooler'`. The examples import the source so that they run (wrangler dev,
// the tests) straight from a fresh clone, without a build.
import {
  classifyUrl,
  errorResponse,
  PoolerError,
  type PoolerOptions,
  type PoolerVariables,
  pooler,
} from '../src/index.ts'

export type Bindings = { DATABASE_URL?: string }
export type AppEnv = { Bindings: Bindings; Variables: PoolerVariables }

interface Note {
  id: number
  text: string
  created_at: Date
}

const noteBody = z.object({ text: z.string().trim().min(1).max(500) })
const listQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) })
const noteParam = z.object({ id: z.coerce.number().int().positive().max(2_147_483_647) })

/** zod-validator hook: a failed validation answers 400 with the issues, in the app's error shape. */
const invalid = (
  result: { success: true } | { success: false; error: { issues: readonly unknown[] } },
  c: Context,
) => {
  if (!result.success)
    return c.json(
      { error: { code: 'INVALID_REQUEST', message: 'Invalid request', issues: result.error.issues } },
      400,
    )
}

const jsonError = (code: string, message: string, status: number) =>
  Response.json({ error: { code, message } }, { status })

/** A JSON body needs its content type: without it the validator would see `{}` ("expected string"). */
const jsonBody = async (c: Context, next: () => Promise<void>) => {
  if (!/^application\/([a-z.-]+\+)?json\b/i.test(c.req.header('content-type') ?? ''))
    return jsonError('INVALID_REQUEST', 'Expected a JSON body (content-type: application/json)', 400)
  await next()
}

/**
 * Builds the app. `options` go to `pooler()` (the runtime entries use the defaults; tests pass their own
 * `onEvent`). `basePath` mounts every route under a prefix (Vercel: `/api`).
 */
export function createApp(options: PoolerOptions = {}, { basePath = '/' }: { basePath?: string } = {}) {
  // strict: false — `/api/` and `/api` (and `/notes/`, `/notes`) are the same route.
  const app = new Hono<AppEnv>({ strict: false }).basePath(basePath)

  app.use(pooler({ applicationName: 'notes-example', ...options }))

  app.get('/', (c) => {
    const url = env<Bindings>(c).DATABASE_URL
    return c.json({ name: 'hono-pooler notes example', mode: url ? classifyUrl(url).mode : null })
  })

  app.get('/now', async (c) => {
    const [row] = await c.var.sql<{ now: Date }[]>`select now() as now`
    return c.json({ now: row!.now })
  })

  app.post('/notes', jsonBody, zValidator('json', noteBody, invalid), async (c) => {
    const { text } = c.req.valid('json')
    const [note] = await c.var.sql<Note[]>`
      insert into notes (text) values (${text}) returning id, text, created_at`
    return c.json(note!, 201)
  })

  app.get('/notes', zValidator('query', listQuery, invalid), async (c) => {
    const { limit } = c.req.valid('query')
    const notes = await c.var.sql<Note[]>`
      select id, text, created_at from notes order by created_at desc, id desc limit ${limit}`
    return c.json({ notes })
  })

  app.get('/notes/:id', zValidator('param', noteParam, invalid), async (c) => {
    const { id } = c.req.valid('param')
    const [note] = await c.var.sql<Note[]>`select id, text, created_at from notes where id = ${id}`
    return note ? c.json(note) : jsonError('NOT_FOUND', `Note ${id} not found`, 404)
  })

  // The body queries while it streams: hono-pooler closes the client when the stream ends or is cancelled.
  app.get('/export', (c) => {
    c.header('content-type', 'application/x-ndjson; charset=utf-8')
    return stream(
      c,
      async (out) => {
        const rows = c.var.sql<Note[]>`select id, text, created_at from notes order by id`.cursor(100)
        for await (const batch of rows) {
          if (out.aborted) break
          await out.write(batch.map((n) => `${JSON.stringify(n)}\n`).join(''))
        }
      },
      async (err, out) => {
        // A client that goes away mid-stream cancels the query (CONNECTION_DESTROYED): nothing to report.
        if (!out.aborted && !c.req.raw.signal.aborted) console.error('GET /export failed:', err)
      },
    )
  })

  app.notFound((c) => jsonError('NOT_FOUND', `No route for ${c.req.method} ${c.req.path}`, 404))

  app.onError((err, c) => {
    // Connection failures (503, with Retry-After when the pooler is saturated) and every other PoolerError.
    if (err instanceof PoolerError) return errorResponse(err)
    // Hono's own 400s (malformed JSON body) in the same shape as the validation errors.
    if (err instanceof HTTPException)
      return err.status === 400
        ? jsonError('INVALID_REQUEST', err.message || 'Invalid request', 400)
        : jsonError('HTTP_ERROR', err.message || 'Request failed', err.status)
    console.error(`${c.req.method} ${c.req.path}:`, err)
    return jsonError('INTERNAL', 'Internal error', 500)
  })

  return app
}
