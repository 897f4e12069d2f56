import { mkdirSync } from 'node:fs'
import { defineConfig } from 'vitest/config'

// Tests write scratch files under .tmp/ (and the JSON report): a fresh clone has none yet.
mkdirSync('.tmp', { recursive: true })

export default defineConfig({
  test: {
    reporters: ['default', 'json'],
    outputFile: { json: '.tmp/vitest-report.json' },
    pool: 'forks',
    projects: [
      {
        // Pure: lexer, guard rules, URL and options, literals, the built package. No database.
        test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 30_000 },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Starts a real Postgres + PgBouncer (transaction mode) once per run; fails the run if it cannot.
          globalSetup: ['test/support/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
        },
      },
    ],
  },
})
