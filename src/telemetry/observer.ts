/**
 * What the request client tells an observer about its statements and its connection: the seam through
 * which Server-Timing and OpenTelemetry see a request's database work. Imports nothing of ours.
 */

/** Observes one request's client. Every method must be cheap and must never throw. */
export interface ClientObserver {
  /** A statement is about to be sent: `text` is its template with `$n` (never values). Returns its end. */
  statement(text: string): (error?: unknown) => void
  /** The client is about to need a connection (first statement, or a reserve). */
  connecting(): void
  /** The server sent its first ParameterStatus: the connection is set up (startup and authentication). */
  connected(): void
  /** The client was closed. */
  closed(): void
}
