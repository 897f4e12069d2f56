/** Helpers for the runtime tests of the notes example (examples/). */
import postgres from 'postgres'
import { applySchema } from '../../examples/schema.ts'
import { stack } from './stack'

/** The stack's pooler URL with an application_name, so that each test file sees only its own clients. */
export function appUrl(applicationName: string, url = stack.databaseUrl): string {
  const u = new URL(url)
  u.searchParams.set('application_name', applicationName)
  return u.toString()
}

/** Applies examples/schema.sql (idempotent, serialised between parallel test files). */
export const prepareSchema = (): Promise<void> => applySchema(stack.directUrl)

/** Inserts `n` notes straight through the direct URL; returns how many notes exist. */
export async function seedNotes(n: number, prefix: string): Promise<number> {
  const sql = postgres(stack.directUrl, { max: 1, onnotice: () => {} })
  try {
    await sql`insert into notes (text) select ${prefix} || g from generate_series(1, ${n}::int) g`
    const [row] = await sql<{ n: number }[]>`select count(*)::int as n from notes`
    return row!.n
  } finally {
    await sql.end({ timeout: 2 })
  }
}

export interface NoteJson {
  id: number
  text: string
  created_at: string
}

export type Call = (path: string, init?: RequestInit) => Promise<Response>

export const postJson = (call: Call, path: string, body: unknown): Promise<Response> =>
  call(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

/**
 * Exercises every route of the notes app through `call` (a runtime's fetch) and checks the answers.
 * `tag` makes this file's notes recognisable (other files insert notes in parallel). Returns the number of
 * requests made.
 */
export async function checkRoutes(fetchRoute: Call, tag: string): Promise<number> {
  const { expect } = await import('vitest')
  let requests = 0
  const call: Call = (path, init) => {
    requests++
    return fetchRoute(path, init)
  }
  const isoDate = expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)

  let res = await call('/')
  expect(res.status).toBe(200)
  expect(await res.json()).toEqual({ name: 'hono-pooler notes example', mode: 'transaction' })

  res = await call('/now')
  expect(res.status).toBe(200)
  const { now } = (await res.json()) as { now: string }
  expect(now).toEqual(isoDate)
  expect(Math.abs(Date.parse(now) - Date.now())).toBeLessThan(60_000)

  const created: NoteJson[] = []
  for (const text of [`${tag} first`, `${tag} second`, `${tag} third`]) {
    res = await postJson(call, '/notes', { text })
    expect(res.status).toBe(201)
    const note = (await res.json()) as NoteJson
    expect(note).toEqual({ id: expect.any(Number), text, created_at: isoDate })
    created.push(note)
  }

  // Validation: 400 with the zod issues, in the app's error shape.
  for (const bad of [{ text: '' }, { text: 'x'.repeat(501) }, {}, { text: 42 }]) {
    res = await postJson(call, '/notes', bad)
    expect(res.status).toBe(400)
    const body = (await res.json()) as any
    expect(body.error.code).toBe('INVALID_REQUEST')
    expect(body.error.issues[0].path).toEqual(['text'])
  }
  res = await call('/notes', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{' })
  expect(res.status).toBe(400)
  expect(((await res.json()) as any).error).toEqual({
    code: 'INVALID_REQUEST',
    message: expect.stringMatching(/JSON/),
  })
  // No content type: one error shape too, saying what is missing (not "expected string, received undefined").
  res = await call('/notes', { method: 'POST', body: JSON.stringify({ text: 'no content type' }) })
  expect(res.status).toBe(400)
  expect(await res.json()).toEqual({
    error: { code: 'INVALID_REQUEST', message: 'Expected a JSON body (content-type: application/json)' },
  })
  res = await postJson(call, '/notes', { text: 'x'.repeat(500) })
  expect(res.status).toBe(201)
  await res.body?.cancel()

  res = await call('/notes?limit=100')
  expect(res.status).toBe(200)
  const { notes } = (await res.json()) as { notes: NoteJson[] }
  expect(notes.length).toBeGreaterThanOrEqual(4)
  expect(notes.length).toBeLessThanOrEqual(100)
  const times = notes.map((n) => Date.parse(n.created_at))
  expect(times).toEqual([...times].sort((a, b) => b - a)) // newest first
  const mine = notes.filter((n) => n.text.startsWith(`${tag} `)).map((n) => n.text)
  expect(mine).toEqual([`${tag} third`, `${tag} second`, `${tag} first`])

  res = await call('/notes')
  expect(((await res.json()) as { notes: unknown[] }).notes.length).toBeLessThanOrEqual(20) // default limit
  res = await call('/notes?limit=2')
  expect(((await res.json()) as { notes: unknown[] }).notes).toHaveLength(2)
  for (const limit of ['0', '101', 'abc', '1.5']) {
    res = await call(`/notes?limit=${limit}`)
    expect(res.status).toBe(400)
    expect(((await res.json()) as any).error.issues[0].path).toEqual(['limit'])
  }

  res = await call(`/notes/${created[1]!.id}`)
  expect(res.status).toBe(200)
  expect(await res.json()).toEqual(created[1])

  res = await call('/notes/2147483647')
  expect(res.status).toBe(404)
  expect(await res.json()).toEqual({ error: { code: 'NOT_FOUND', message: 'Note 2147483647 not found' } })
  res = await call('/notes/abc')
  expect(res.status).toBe(400)
  res = await call('/nope')
  expect(res.status).toBe(404)
  expect(((await res.json()) as any).error.code).toBe('NOT_FOUND')
  return requests
}

/** GET /export: NDJSON, one line per note, ids ascending. Returns the parsed notes. */
export async function readExport(call: Call): Promise<NoteJson[]> {
  const res = await call('/export')
  if (res.status !== 200) throw new Error(`/export: ${res.status} ${await res.text()}`)
  if (!res.headers.get('content-type')?.startsWith('application/x-ndjson'))
    throw new Error(`/export content-type: ${res.headers.get('content-type')}`)
  const text = await res.text()
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as NoteJson)
}
