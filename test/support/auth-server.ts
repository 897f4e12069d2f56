/**
 * A throwaway Postgres for the auth methods the shared stack does not use: `md5`, `password` (cleartext)
 * and `trust`, one role each (pg_hba picks the method by user). Started by the test file that needs it,
 * stopped by it (its own PID), in a temp dir removed afterwards.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { findPgBin, freePort, serviceUser, stopChild, waitForPort } from '../../scripts/stack.ts'

export interface AuthServer {
  port: number
  /** postgres://<user>:<password>@127.0.0.1:<port>/postgres for md5, cleartext, trust and scram. */
  urls: Record<'md5' | 'password' | 'trust' | 'scram', string>
  stop(): Promise<void>
}

const PASSWORD = 'auth-methods-pw'

export async function startAuthServer(): Promise<AuthServer> {
  const bin = findPgBin()
  const user = serviceUser()
  const dir = mkdtempSync(join(tmpdir(), 'hono-pooler-auth-'))
  const data = join(dir, 'data')
  if (user) chownSync(dir, user.uid, user.gid)
  chmodSync(dir, 0o700)
  const as = user ?? {}
  let child: ChildProcess | undefined
  const stop = async () => {
    if (child) await stopChild(child, 'SIGINT')
    rmSync(dir, { recursive: true, force: true })
  }
  try {
    execFileSync(
      join(bin, 'initdb'),
      ['-D', data, '-U', 'postgres', '--auth=trust', '--no-sync', '-E', 'UTF8', '--locale=C'],
      {
        stdio: 'pipe',
        ...as,
      },
    )
    writeFileSync(
      join(data, 'pg_hba.conf'),
      [
        'host all md5u 127.0.0.1/32 md5',
        'host all pwu 127.0.0.1/32 password',
        'host all scramu 127.0.0.1/32 scram-sha-256',
        'host all all 127.0.0.1/32 trust',
        '',
      ].join('\n'),
    )
    const port = await freePort()
    child = spawn(
      join(bin, 'postgres'),
      [
        '-D',
        data,
        '-p',
        String(port),
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        `unix_socket_directories=${dir}`,
        '-c',
        'fsync=off',
        '-c',
        'max_connections=20',
        '-c',
        'log_min_messages=fatal',
      ],
      { stdio: ['ignore', 'ignore', 'ignore'], ...as },
    )
    await waitForPort(port, child, 'postgres (auth methods)')
    const su = postgres(`postgres://postgres@127.0.0.1:${port}/postgres`, { max: 1, onnotice: () => {} })
    try {
      for (let i = 0; ; i++) {
        const err = await su`select 1`.then(
          () => undefined,
          (e: { code?: string }) => e,
        )
        if (!err) break
        if (err.code !== '57P03' || i > 300) throw err
        await new Promise((r) => setTimeout(r, 20))
      }
      await su.unsafe(`set password_encryption = 'md5'`)
      await su.unsafe(`create role md5u login password '${PASSWORD}'`)
      await su.unsafe(`set password_encryption = 'scram-sha-256'`)
      await su.unsafe(`create role pwu login password '${PASSWORD}'`)
      await su.unsafe(`create role scramu login password '${PASSWORD}'`)
      await su.unsafe('create role trustu login')
    } finally {
      await su.end({ timeout: 1 })
    }
    const url = (u: string) => `postgres://${u}:${PASSWORD}@127.0.0.1:${port}/postgres`
    return {
      port,
      urls: { md5: url('md5u'), password: url('pwu'), trust: url('trustu'), scram: url('scramu') },
      stop,
    }
  } catch (e) {
    await stop()
    throw e
  }
}
