// Bundled by bench/run.ts with esbuild (src uses extensionless imports, which plain node cannot resolve).

export { checkSql, closePools, pooler, poolStats } from '../src'
export { fastClass } from '../src/client/fast-class'
export { guardQuery } from '../src/guard/query-guard'
export { inlineQuery } from '../src/inline/inliner'
export { clientConfig, createRequestClient, parseOptions } from '../src/internal'
export { queryFactory } from '../src/pool/query-class'
