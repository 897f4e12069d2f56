/**
 * The value of a string constant token, as PostgreSQL's scanner reads it: `'…'`, `E'…'` (backslash
 * escapes), `U&'…'` (Unicode escapes) and dollar-quoted `$tag$…$tag$`. Used by the guard to read a
 * `DO` body or a `set_config` argument written as a string.
 */
import type { Token } from './lexer'

const OCTAL = /^[0-7]{1,3}/
const HEX = /^x([0-9a-fA-F]{1,2})/
const SIMPLE: Record<string, string> = { b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' }

function eString(body: string): string | undefined {
  let out = ''
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!
    if (c === "'") {
      out += "'"
      i++ // '' inside E'…'
    } else if (c !== '\\') out += c
    else {
      const rest = body.slice(i + 1)
      const o = OCTAL.exec(rest)
      const x = HEX.exec(rest)
      const u = /^u([0-9a-fA-F]{4})/.exec(rest) ?? /^U([0-9a-fA-F]{8})/.exec(rest)
      if (o) {
        out += String.fromCharCode(Number.parseInt(o[0], 8) & 0xff)
        i += o[0].length
      } else if (x) {
        out += String.fromCharCode(Number.parseInt(x[1]!, 16))
        i += x[0].length
      } else if (u) {
        const cp = Number.parseInt(u[1]!, 16)
        if (cp > 0x10ffff) return undefined
        out += String.fromCodePoint(cp)
        i += u[0].length
      } else if (rest.length) {
        out += SIMPLE[rest[0]!] ?? rest[0]
        i++
      }
    }
  }
  return out
}

function uString(body: string): string | undefined {
  let out = ''
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!
    if (c === "'") {
      out += "'"
      i++
    } else if (c !== '\\') out += c
    else if (body[i + 1] === '\\') {
      out += '\\'
      i++
    } else {
      const m = /^\+([0-9a-fA-F]{6})/.exec(body.slice(i + 1)) ?? /^([0-9a-fA-F]{4})/.exec(body.slice(i + 1))
      if (!m) return undefined
      const cp = Number.parseInt(m[1]!, 16)
      if (cp > 0x10ffff) return undefined
      out += String.fromCodePoint(cp)
      i += m[0].length
    }
  }
  return out
}

/**
 * The value of the string constant at `tokens[k]`, or undefined when it is not a string constant the
 * guard can read (bit strings, `N'…'`, an unterminated literal, `U&'…' UESCAPE`).
 *
 * @example
 * ```ts
 * import { tokenize } from './lexer'
 *
 * stringValue(tokenize("E'it\\'s'"), 0) // "it's"
 * ```
 */
export function stringValue(tokens: Token[], k: number): string | undefined {
  const t = tokens[k]
  if (!t) return undefined
  const v = t.value
  if (t.kind === 'dollar') {
    const tag = v.slice(0, v.indexOf('$', 1) + 1)
    return v.length >= 2 * tag.length && v.endsWith(tag) ? v.slice(tag.length, -tag.length) : undefined
  }
  if (t.kind !== 'string' || v.length < 2 || !v.endsWith("'")) return undefined
  const head = v[0]!.toLowerCase()
  if (head === "'") return v.slice(1, -1).replaceAll("''", "'")
  if (head === 'e') return eString(v.slice(2, -1))
  if (head === 'u' && tokens[k + 1]?.value !== 'uescape') return uString(v.slice(3, -1))
  return undefined
}
