/**
 * What `pooler({ pool })` accepts (the defaults and the validation are in `src/options.ts` with the others).
 */

/** A shared pool for long-running servers (`pooler({ pool })`). Every field is optional. */
export interface PoolOptions {
  /** Connections kept open once opened (`pool_size`). Default 5. */
  size?: number
  /** Extra connections opened under a burst, closed as soon as they are idle (`max_overflow`). Default 10. */
  overflow?: number
  /** Seconds a query waits for a connection when all are busy, then `POOL_TIMEOUT` (`pool_timeout`). Default 30. */
  timeout?: number
  /** Maximum lifetime of a connection in seconds (`pool_recycle`); `0` keeps them forever. Default 1800. */
  recycle?: number
  /** Allow a pool on Workers / Vercel, where sockets do not outlive a request. Default false. */
  allowServerless?: boolean
  /** On first use, warn once when `size + overflow` exceeds the server's connection budget. Default true. */
  checkBudget?: boolean
}

/** `PoolOptions` with every default filled in. */
export type ResolvedPoolOptions = Required<PoolOptions>
