import { defineConfig } from 'tsup'

export default defineConfig({
  // cli: the `hono-pooler` bin (doctor, top); its #!/usr/bin/env node line is kept and the file made executable.
  entry: { index: 'src/index.ts', internal: 'src/internal.ts', cli: 'src/cli/main.ts' },
  format: ['esm'],
  dts: { entry: { index: 'src/index.ts', internal: 'src/internal.ts' } },
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // postgres.js must stay external: its `workerd` export condition picks the Cloudflare build.
  // cloudflare:sockets exists only in workerd (src/connect/workerd-socket.ts imports it there, dynamically).
  external: ['hono', 'postgres', 'zod', 'cloudflare:sockets', '@opentelemetry/api'],
})
