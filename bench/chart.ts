/** A small grouped bar chart (SVG, no dependencies): one group per workload, one bar per client. */
const COLORS = ['#2f6fde', '#d9534f', '#f0ad4e', '#5cb85c', '#999999']
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/`/g, '')

export function chartSvg(
  rows: { name: string; values: number[] }[],
  groups: string[],
  title: string,
): string {
  const W = 760
  const H = 320
  const left = 40
  const top = 40
  const bottom = 70
  const max = Math.ceil(Math.max(...rows.flatMap((r) => r.values)) + 1)
  const gw = (W - left - 10) / groups.length
  const bw = (gw - 16) / rows.length
  const y = (v: number) => top + (H - top - bottom) * (1 - v / max)
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(title)}</title>`,
    `<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${esc(title)}</text>`,
  ]
  for (let v = 0; v <= max; v++)
    parts.push(
      `<line x1="${left}" x2="${W - 10}" y1="${y(v)}" y2="${y(v)}" stroke="#eee"/><text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${v}</text>`,
    )
  groups.forEach((g, gi) => {
    const x0 = left + gi * gw + 8
    rows.forEach((r, ri) => {
      const v = r.values[gi] ?? 0
      parts.push(
        `<rect x="${x0 + ri * bw}" y="${y(v)}" width="${bw - 2}" height="${y(0) - y(v)}" fill="${COLORS[ri % COLORS.length]}"><title>${esc(r.name)}: ${v.toFixed(1)}</title></rect>`,
      )
    })
    parts.push(`<text x="${x0 + (gw - 16) / 2}" y="${H - bottom + 16}" text-anchor="middle">${esc(g)}</text>`)
  })
  rows.forEach((r, ri) => {
    const x = left + (ri % 3) * 240
    const yy = H - 30 + Math.floor(ri / 3) * 16
    parts.push(
      `<rect x="${x}" y="${yy - 9}" width="10" height="10" fill="${COLORS[ri % COLORS.length]}"/><text x="${x + 14}" y="${yy}">${esc(r.name)}</text>`,
    )
  })
  parts.push('</svg>')
  return parts.join('\n')
}
