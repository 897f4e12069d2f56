/**
 * Only for running the example from this repository's source: src/ uses extensionless relative imports
 * (`./client`), which Node's own ESM resolver does not complete. This hook retries them with `.ts`.
 *
 *   node --import ./examples/node/register.ts examples/node/server.ts
 *
 * An app that installs hono-pooler from npm imports the built package and needs none of this.
 */
import { register } from 'node:module'

const hooks = `
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (e) {
    if (e?.code !== 'ERR_MODULE_NOT_FOUND' || !/^\\.\\.?\\//.test(specifier) || /\\.[cm]?[jt]s$/.test(specifier)) throw e
    return next(specifier + '.ts', context)
  }
}`
register(`data:text/javascript,${encodeURIComponent(hooks)}`, import.meta.url)
