// Bundled by bench/run.ts with esbuild (src uses extensionless imports, which plain node cannot resolve).

export { guardQuery } from '../src/enforce'
export { checkSql } from '../src/guard/rules'
export { inlineQuery } from '../src/inline'
export { pooler } from '../src/middleware'
