/**
 * Every error hono-pooler raises: the `PoolerError` class with its codes, statuses and public messages
 * (`pooler-error.ts`), and the named errors built from it (`factories.ts`). Nothing here imports anything
 * else of hono-pooler.
 */
export * from './factories'
export * from './pooler-error'
