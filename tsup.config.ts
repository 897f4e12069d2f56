import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts', 'src/internal.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // postgres.js must stay external: its `workerd` export condition picks the Cloudflare build.
  // cloudflare:sockets exists only in workerd (src/client/workerd-socket.ts imports it there, dynamically).
  external: ['hono', 'postgres', 'zod', 'cloudflare:sockets', '@opentelemetry/api'],
})
