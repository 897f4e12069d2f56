/**
 * Every JSDoc `@example` in src/ is a fenced ```ts block that compiles: each is typechecked as its own file
 * beside the module it documents, with that module's exports in scope (its own imports win) and the usual
 * names of a Hono app declared (`app`, `c`, `sql`). `hono-pooler` resolves to src/.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { describe, expect, it } from 'vitest'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const src = join(root, 'src')

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory()
      ? sources(join(dir, d.name))
      : d.name.endsWith('.ts') && !d.name.endsWith('.d.ts')
        ? [join(dir, d.name)]
        : [],
  )
}

interface Example {
  file: string
  line: number
  fenced: boolean
  code: string
}

function examples(file: string): Example[] {
  const lines = readFileSync(file, 'utf8').split('\n')
  const out: Example[] = []
  lines.forEach((l, i) => {
    if (!/^\s*\* @example\s*$/.test(l)) return
    const fenced = /^\s*\* ```ts\s*$/.test(lines[i + 1] ?? '')
    const body: string[] = []
    for (let j = i + 2; fenced && j < lines.length && !/^\s*\* ```\s*$/.test(lines[j]!); j++)
      body.push(lines[j]!.replace(/^\s*\* ?/, ''))
    out.push({ file, line: i + 1, fenced, code: body.join('\n') })
  })
  return out
}

const exportsOf = (file: string): { values: string[]; types: string[] } => {
  const text = readFileSync(file, 'utf8')
  const values = [...text.matchAll(/^export (?:async )?(?:function\*?|const|let|class) (\w+)/gm)].map(
    (m) => m[1]!,
  )
  const types = [...text.matchAll(/^export (?:interface|type) (\w+)/gm)].map((m) => m[1]!)
  return { values, types }
}

const PREAMBLE = `declare const app: import('hono').Hono<any>
declare const c: import('hono').Context<any>
declare const sql: import('postgres').Sql<any>
`

function virtualFile(ex: Example, k: number): [string, string] {
  const lines = ex.code.split('\n')
  // Imports and ambient declarations stay at the top level; the rest runs inside an async function.
  const top = (l: string) => /^(import|declare) /.test(l)
  const imports = lines.filter(top)
  const rest = lines.filter((l) => !top(l))
  const own = new Set(
    imports
      .filter((l) => l.startsWith('import'))
      .flatMap((l) => [...l.matchAll(/\b(\w+)\b/g)].map((m) => m[1]!)),
  )
  const { values, types } = exportsOf(ex.file)
  const base = `./${relative(dirname(ex.file), ex.file).replace(/\.ts$/, '')}`
  const auto = [...values, ...types.map((t) => `type ${t}`)].filter((n) => !own.has(n.replace(/^type /, '')))
  const text = [
    PREAMBLE,
    auto.length ? `import { ${auto.join(', ')} } from '${base}'` : '',
    ...imports,
    'export async function __example() {',
    ...rest,
    '}',
  ].join('\n')
  return [join(dirname(ex.file), `__example_${k}.ts`), text]
}

const all = sources(src).flatMap(examples)

describe('JSDoc examples', () => {
  it('there are examples, and every one is a fenced ```ts block', () => {
    expect(all.length).toBeGreaterThan(40)
    expect(all.filter((e) => !e.fenced).map((e) => `${relative(root, e.file)}:${e.line}`)).toEqual([])
  })

  it('every example compiles', () => {
    const files = new Map(all.map((ex, k) => virtualFile(ex, k)))
    const options: ts.CompilerOptions = {
      target: ts.ScriptTarget.ES2022,
      module: ts.ModuleKind.ESNext,
      moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2023.d.ts', 'lib.dom.d.ts', 'lib.dom.iterable.d.ts'],
      types: ['node'],
      strict: true,
      noEmit: true,
      skipLibCheck: true,
      allowImportingTsExtensions: true,
      esModuleInterop: true,
      noUnusedLocals: false,
      baseUrl: root,
      paths: { 'hono-pooler': ['src/index.ts'], 'hono-pooler/internal': ['src/internal.ts'] },
    }
    const host = ts.createCompilerHost(options)
    const read = host.readFile.bind(host)
    const exists = host.fileExists.bind(host)
    host.readFile = (f) => files.get(f) ?? read(f)
    host.fileExists = (f) => files.has(f) || exists(f)
    const getSource = host.getSourceFile.bind(host)
    host.getSourceFile = (f, lang, ...rest) =>
      files.has(f) ? ts.createSourceFile(f, files.get(f)!, lang) : getSource(f, lang, ...rest)
    const program = ts.createProgram([...files.keys()], options, host)
    const problems = ts
      .getPreEmitDiagnostics(program)
      .filter((d) => d.file && files.has(d.file.fileName))
      .map((d) => {
        const k = Number(/__example_(\d+)\.ts$/.exec(d.file!.fileName)![1])
        const ex = all[k]!
        return `${relative(root, ex.file)}:${ex.line}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`
      })
    expect(problems).toEqual([])
  }, 60_000)
})
