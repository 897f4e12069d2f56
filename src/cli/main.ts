#!/usr/bin/env node
/**
 * The `hono-pooler` command (package.json `bin`): `doctor` and `top`. Runs on plain Node ≥ 18.3 from the
 * built package (dist/cli.js); exit code 0 when nothing failed, 1 when a check failed, 2 for a usage error.
 */
import { redactUrl } from '../redact'
import { parseCommand, USAGE, UsageError } from './args'
import { doctor } from './doctor'
import { errText, processIo } from './output'
import { top } from './top'

/** Flushes stdout, then exits (pending DNS lookups or sockets must not keep a finished run alive). */
function exit(code: number): void {
  process.stdout.write('', () => process.exit(code))
}

async function main(argv: string[]): Promise<number> {
  const io = processIo()
  let cmd: ReturnType<typeof parseCommand>
  try {
    cmd = parseCommand(argv, process.env)
  } catch (e) {
    if (!(e instanceof UsageError)) throw e
    io.err(`hono-pooler: ${e.message}\n\n${USAGE}`)
    return 2
  }
  if (cmd.command === 'help') {
    io.out(USAGE)
    return 0
  }
  if (cmd.command === 'doctor') {
    // The checks share the deadline; this is the backstop should anything outlive it.
    const secs = cmd.options.timeout + 5
    setTimeout(() => {
      io.err(`hono-pooler doctor: gave up after ${secs} s\n`)
      exit(1)
    }, secs * 1000).unref()
    return doctor(cmd.options, io)
  }
  return top(cmd.options, io)
}

main(process.argv.slice(2)).then(exit, (e: unknown) => {
  // The URL may be in an argument or the environment: never print it unmasked.
  const url = process.env.DATABASE_URL
  let text = errText(e)
  for (const u of [url, ...process.argv.slice(2)])
    if (u && text.includes(u)) text = text.split(u).join(redactUrl(u))
  process.stderr.write(`hono-pooler: ${text}\n`)
  exit(1)
})
