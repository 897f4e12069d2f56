/**
 * When is a response really over? Static bodies (c.json, c.text, …) as soon as the handler returns; a
 * streamed body (stream(), streamSSE(), any ReadableStream, a handler's own Response) only once it has been
 * fully sent or cancelled — the body may still query.
 */
import type { Context } from 'hono'
import type { CloseReason } from '../options'

const BUILDERS = ['body', 'newResponse', 'json', 'text', 'html'] as const

/**
 * Tells whether the final response may still use the client after the handler returned: its body came
 * from a ReadableStream (stream(), streamSSE(), c.body(readable)), or it is a Response Hono's context did
 * not build (a handler's own `new Response(…)`). Static bodies (c.json, c.text, …) close right away.
 */
export function watchResponses(c: Context): () => boolean {
  const built = new WeakSet<Response>()
  let streamed = false
  const ctx = c as unknown as Record<
    (typeof BUILDERS)[number],
    (data: unknown, ...rest: unknown[]) => unknown
  >
  for (const name of BUILDERS) {
    const build = ctx[name]
    ctx[name] = (data, ...rest) => {
      const r = build(data, ...rest)
      if (data instanceof ReadableStream) streamed = true
      else if (r instanceof Response) built.add(r)
      else if (r instanceof Promise)
        r.then(
          (x) => x instanceof Response && built.add(x),
          () => {},
        )
      return r
    }
  }
  return () => streamed || !built.has(c.res)
}

export function track(
  body: ReadableStream<Uint8Array>,
  resolve: () => void,
  close: (reason: CloseReason) => Promise<void>,
): ReadableStream<Uint8Array> {
  const reader = body.getReader()
  const finish = (reason: CloseReason) => close(reason).then(resolve)
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read()
        if (done) {
          controller.close()
          void finish('stream-end')
        } else controller.enqueue(value)
      } catch (e) {
        controller.error(e)
        void finish('error')
      }
    },
    async cancel(reason) {
      void finish('stream-cancel')
      await reader.cancel(reason)
    },
  })
}
