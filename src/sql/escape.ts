/**
 * Escaping for the two literal syntaxes hono-pooler writes: SQL string literals and the elements of an
 * array literal (the same escaping postgres.js's array serializer uses).
 */

/** A character `quote` escapes or refuses. */
const NEEDS_ESCAPE = /['\\\0]/

/**
 * `E'…'`: reads the same whatever `standard_conforming_strings` is. A NUL cannot be sent: undefined.
 *
 * @example
 * ```ts
 * quote("it's") // "E'it''s'"
 * ```
 */
export function quote(s: string): string | undefined {
  if (!NEEDS_ESCAPE.test(s)) return `E'${s}'` // most values: one scan
  if (s.includes('\0')) return undefined
  return `E'${s.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`
}

/**
 * One element of an array literal, double-quoted: `\` and `"` escaped with a backslash.
 *
 * @example
 * ```ts
 * arrayElement('say "hi"') // '"say \\"hi\\""'
 * ```
 */
export function arrayElement(x: string): string {
  return `"${x.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`
}
