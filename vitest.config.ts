import { defineConfig } from 'vitest/config'

// Three projects: fast pure-logic unit tests; integration tests that share one real Kafka broker
// started by test/global-setup.ts (provide/inject) and store into chDB (the embedded path); and
// the server path, some of those files again plus test/server/, against a ClickHouse server.
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
      {
        // the server path: these files again, with `clickhouse` a ClickHouse server over HTTP
        // shared by every process (test/global-setup.ts), the embedded path being chDB above
        test: {
          name: 'server',
          include: ['test/integration/analyst-queries.test.ts', 'test/integration/aggregator-crash.test.ts', 'test/integration/distributed.test.ts', 'test/server/**/*.test.ts'],
          globalSetup: ['test/global-setup.ts'],
          testTimeout: 90_000,
          hookTimeout: 180_000,
        },
      },
    ],
  },
})
