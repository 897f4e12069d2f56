/** bench/lib.ts (src/ as one ESM file: plain node cannot resolve src's extensionless imports), built once per run. */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
/** Where bench/lib.ts is bundled to (BENCH_LIB_OUT: elsewhere, to measure two builds side by side). */
export const LIB_OUT =
  process.env.BENCH_LIB_OUT ?? join(here, '..', 'node_modules/.cache/hono-pooler-bench/lib.mjs')

/** Bundles bench/lib.ts to LIB_OUT with esbuild and imports it. */
export async function loadLib(): Promise<any> {
  const { build } = await import('esbuild')
  await build({
    entryPoints: [join(here, 'lib.ts')],
    bundle: true,
    format: 'esm',
    platform: 'node',
    packages: 'external',
    outfile: LIB_OUT,
    logLevel: 'warning',
  })
  return import(LIB_OUT)
}
