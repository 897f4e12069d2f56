import type { TestProject } from 'vitest/node'
import { type Stack, startStack } from '../../scripts/stack.ts'

export type StackInfo = Omit<Stack, 'stop' | 'control'>

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackInfo
  }
}

let stack: Stack | undefined

export async function setup(project: TestProject): Promise<void> {
  // Never skipped: if the stack cannot start, the whole run fails with the reason.
  stack = await startStack()
  if (!stack.adminUrl)
    throw new Error('PGBOUNCER_ADMIN_URL must be set when DATABASE_URL is given: the tests read SHOW CLIENTS')
  const { stop: _stop, control: _control, ...info } = stack
  project.provide('stack', info)
}

export async function teardown(): Promise<void> {
  await stack?.stop()
}
