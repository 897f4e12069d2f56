/** Cost of the guard (cached per template; uncached 1 KB statement) and of the inliner, per query. */
const time = (n: number, f: (i: number) => void) => {
  for (let i = 0; i < Math.min(n, 1000); i++) f(i)
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) f(i)
  return Number(process.hrtime.bigint() - t) / n / 1000 // µs
}
const tpl = (s: TemplateStringsArray, ..._a: unknown[]) => s

export function guardCost(lib: any): string {
  const strings = tpl`select id, title, body from notes where owner = ${0} and created_at > ${0} order by id limit ${0}`
  const cached = time(200_000, (i) => lib.guardQuery({ tagged: true, strings, args: [i, i, 10] }, 'error'))
  const cols = Array.from({ length: 40 }, (_, i) => `col_${i} as alias_${i}`).join(', ')
  const base = `select ${cols} from some_schema.some_table t join other o on o.id = t.other_id where t.a = 'x' and t.b in (1, 2, 3)`
  const uncached = time(5_000, (i) => lib.checkSql(`${base} and t.n = ${i}`))
  const inline = time(100_000, (i) =>
    lib.inlineQuery(
      { tagged: true, strings, args: [`owner-${i}`, new Date(0), 10], options: {}, reject() {} },
      {},
    ),
  )
  const big = `${base} and t.n = `
  return [
    '| | µs per query |',
    '|---|---|',
    `| guard, cached template (\`guardQuery\`, 3 values) | ${cached.toFixed(2)} |`,
    `| guard, uncached ${(big.length / 1024).toFixed(1)} KB statement (\`checkSql\`) | ${uncached.toFixed(1)} |`,
    `| inliner, same 3-value template (lex + escape) | ${inline.toFixed(2)} |`,
  ].join('\n')
}
