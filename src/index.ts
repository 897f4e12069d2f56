export { createRequestClient, type RequestClient } from './client'
export { type CloseReason, type PoolerEvent, type PoolerOptions, parseOptions } from './config'
export { errorResponse, PoolerError, type PoolerErrorCode, redactUrl } from './errors'
export { checkSql, GUARD_RULES, type GuardFinding, type GuardRule } from './guard/rules'
export { withSettings } from './guard/settings'
export {
  type Advice,
  adviseConnection,
  type ConnectionGroup,
  type ConnectionStats,
  connectionStats,
  type Platform,
  poolBudget,
} from './guide'
export {
  findWaitUntil,
  type PoolerBindings,
  type PoolerEnv,
  type PoolerVariables,
  pooler,
} from './middleware'
export { BUILTIN_ARRAY_TYPES, registerArrayTypes } from './types'
export { classifyUrl, type PoolerMode, type Provider, type UrlInfo } from './url'
