export { errorResponse, PoolerError, type PoolerErrorCode } from './errors'
export { GUARD_RULES, type GuardFinding, type GuardRule } from './guard/catalog'
export { checkSql } from './guard/rules'
export {
  type Advice,
  adviseConnection,
  type ConnectionGroup,
  type ConnectionStats,
  connectionStats,
  type Platform,
  poolBudget,
} from './guide'
export { type PoolerBindings, type PoolerEnv, type PoolerVariables, pooler } from './middleware/pooler'
export type { CloseReason, GuardLevel, PoolerEvent, PoolerOptions } from './options'
export { poolStats } from './pool/live'
export type { PoolOptions } from './pool/options'
export type { PoolStats } from './pool/pool'
export { closePools } from './pool/registry'
export { redactUrl } from './redact'
export { withSettings } from './settings'
export type { OpenTelemetryApi } from './telemetry/otel'
export { classifyUrl, type PoolerMode, type Provider, type UrlInfo } from './url'
