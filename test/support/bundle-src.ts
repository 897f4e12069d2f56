/**
 * Bundles some of src/'s exports into one ES module for a child Node process: plain node resolves neither
 * src's extensionless imports nor (before 22.18) TypeScript. Packages stay external, resolved from the
 * checkout's node_modules, so `outfile` must lie inside the checkout.
 */
import { resolve } from 'node:path'
import { build } from 'esbuild'

const root = resolve(import.meta.dirname, '../..')

/**
 * @example
 * ```ts
 * await bundleSrc(['fastClass'], 'client/fast-class', '/path/in/the/checkout/.tmp/lib.mjs')
 * ```
 */
export async function bundleSrc(names: string[], from: string, outfile: string): Promise<void> {
  await build({
    stdin: {
      contents: `export { ${names.join(', ')} } from '${root}/src/${from}'`,
      resolveDir: root,
      loader: 'ts',
    },
    bundle: true,
    format: 'esm',
    platform: 'node',
    packages: 'external',
    outfile,
    logLevel: 'silent',
  })
}
