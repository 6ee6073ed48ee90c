import { defineConfig } from 'vitest/config'

// Two projects: fast pure-logic unit tests, and integration tests that share one real Kafka
// broker and ClickHouse engine started by test/global-setup.ts (provide/inject).
export default defineConfig({
  test: {
    // chDB is one engine per process: forks keep each test file's engine to itself
    pool: 'forks',
    // kafkajs 2.2.4 on Node ≥ 23 warns TimeoutNegativeWarning from its request queue (harmless)
    poolOptions: { forks: { maxForks: 2, minForks: 1, execArgv: ['--disable-warning=TimeoutNegativeWarning'] } },
    // test files run one after another: they share two cores with Kafka and chDB
    fileParallelism: false,
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
})
