/** The options of `pooler()` for Server-Timing and OpenTelemetry, and their validation. */
import * as z from 'zod/v4/mini'
import type { OpenTelemetryApi } from './otel'

export interface TelemetryOptions {
  /** `Server-Timing: db-connect;dur=…, db;dur=…;desc="N queries"` on responses sent whole. Default off. */
  serverTiming?: boolean
  /** Spans and metrics: `true` imports `@opentelemetry/api` lazily, or pass the module. Default off. */
  openTelemetry?: boolean | OpenTelemetryApi
}

const isApi = (v: unknown) => typeof v === 'object' && v !== null && 'trace' in v && 'metrics' in v

/** The zod shape of `TelemetryOptions`, spread into `pooler()`'s schema. */
export const telemetrySchema = {
  serverTiming: z.optional(z.boolean()),
  openTelemetry: z.optional(z.custom<boolean | OpenTelemetryApi>((v) => typeof v === 'boolean' || isApi(v))),
}
