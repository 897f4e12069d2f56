/**
 * Vercel function (Node.js runtime: postgres.js needs TCP sockets, which the Edge runtime does not have).
 * Every path under /api is routed to the notes app: /api, /api/now, /api/notes, /api/notes/:id.
 *
 * Set DATABASE_URL to the *pooler* URL (Supabase: the transaction pooler on port 6543). Vercel functions
 * have no IPv6 egress, so the IPv6-only direct host db.<ref>.supabase.co is unreachable from them.
 *
 * The close of each request's client goes to Vercel's `waitUntil` (the one `@vercel/functions` exports:
 * hono-pooler reads the same request context), so the response is not held up by it. Use `waitUntil` the
 * same way for your own after-response work.
 */
import { waitUntil } from '@vercel/functions'
import { handle } from 'hono/vercel'
import { createApp } from '../../app.ts'

// Routes are mounted under /api (the function's path); the app treats `/api/` and `/api` alike.
const app = createApp(
  {
    // Log slow requests after the response, off the critical path.
    onEvent: (e) => {
      if (e.type === 'close' && e.ms > 1000)
        waitUntil(
          Promise.resolve().then(() => console.warn(`slow request: ${e.ms} ms, ${e.queries} queries`)),
        )
    },
  },
  { basePath: '/api' },
)

export const GET = handle(app)
export const POST = handle(app)
export const OPTIONS = handle(app)
