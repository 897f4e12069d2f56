/**
 * `hono-pooler/internal`: the building blocks under `pooler()`, for tests and advanced use. Not covered
 * by semver: names and signatures may change in any release.
 */
export { BUILTIN_ARRAY_TYPES, registerArrayTypes } from './client/array-types'
export { probeCount } from './client/probe'
export { createRequestClient, type RequestClient } from './client/request-client'
export { clearScramCache, scramDerivations } from './connect/scram'
export { type TlsSettings, tlsSettings } from './connect/tls'
export { tlsResumptions } from './connect/tls-cache'
export { findWaitUntil } from './middleware/wait-until'
export { DEFAULTS, modeDefaults, POOL_DEFAULTS, parseOptions, type ResolvedOptions } from './options'
export { ConnectionPool, type Slot } from './pool/pool'
export { sharedPool } from './pool/registry'
export { serverlessPlatform } from './pool/serverless'
export { type ClientConfig, clientConfig } from './preset'
export type { ClientObserver } from './telemetry/observer'
export { RequestTelemetry } from './telemetry/request-telemetry'
