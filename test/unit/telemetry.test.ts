import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { classifyUrl } from '../../src'
import { RequestTelemetry } from '../../src/internal'
import { operationName } from '../../src/telemetry/otel'

const src = join(dirname(fileURLToPath(import.meta.url)), '../../src')

describe('telemetry', () => {
  it('operationName: the first keyword after whitespace and comments', () => {
    expect(operationName('select 1')).toBe('SELECT')
    expect(operationName('  -- note\n /* c */ insert into t values ($1)')).toBe('INSERT')
    expect(operationName('with x as (select 1) select * from x')).toBe('WITH')
    expect(operationName('')).toBeUndefined()
    expect(operationName('(select 1)')).toBeUndefined()
  })

  it('Server-Timing value: connection only when one was opened, queries counted', () => {
    const t = new RequestTelemetry(classifyUrl('postgres://u:pw@127.0.0.1:6432/app'), undefined)
    expect(t.serverTiming()).toBe('db;dur=0.0;desc="0 queries"')
    t.connected() // no connection was asked for: ignored
    expect(t.connectMs).toBeUndefined()
    const end = t.statement('select $1')
    t.connected()
    t.connected() // later ParameterStatus messages do not move it
    end()
    expect(t.queries).toBe(1)
    expect(t.serverTiming()).toMatch(/^db-connect;dur=\d+\.\d, db;dur=\d+\.\d;desc="1 query"$/)
  })

  it('nothing in src/ imports @opentelemetry/api statically', () => {
    const files = (dir: string): string[] =>
      readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
        d.isDirectory() ? files(join(dir, d.name)) : [join(dir, d.name)],
      )
    for (const f of files(src))
      expect(readFileSync(f, 'utf8')).not.toMatch(/^import (?!type)[^\n]*['"]@opentelemetry\//m)
  })
})
