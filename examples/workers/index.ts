/**
 * Cloudflare Workers entry (root wrangler.toml: `main = "examples/workers/index.ts"`, `nodejs_compat`).
 * DATABASE_URL comes from `.dev.vars` locally and from a secret in production
 * (`npx wrangler secret put DATABASE_URL`). Each request's client is closed through
 * `c.executionCtx.waitUntil`, after the response has been sent.
 */
import { createApp } from '../app.ts'

export default createApp()
