import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: true,
  clean: true,
  sourcemap: true,
  target: 'es2022',
  // postgres.js must stay external: its `workerd` export condition picks the Cloudflare build.
  external: ['hono', 'postgres', 'zod'],
})
