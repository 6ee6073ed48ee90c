/**
 * Starts the real services once for the whole test run and shares them through provide/inject:
 * Kafka (KAFKA_BROKERS, Testcontainers, or a local KRaft broker from the official jars) and
 * ClickHouse (CLICKHOUSE_URL, Testcontainers, or chDB in-process). No silent skips: when no
 * Kafka can be had, the run fails with what to install.
 */
import type { TestProject } from 'vitest/node'
import { provisionKafka } from './support/kafka.ts'
import { provisionClickHouse, type ClickHouseTarget } from './support/clickhouse.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[]
    kafkaVersion: string
    clickhouse: ClickHouseTarget
  }
}

export default async function setup(project: TestProject) {
  const [kafka, ch] = await Promise.all([provisionKafka(), provisionClickHouse()])
  console.log(`[burnwatch tests] Kafka ${kafka.version} (${kafka.source}) at ${kafka.brokers.join(',')}; ClickHouse via ${ch.target.source}`)
  project.provide('kafkaBrokers', kafka.brokers)
  project.provide('kafkaVersion', kafka.version)
  project.provide('clickhouse', ch.target)
  return async () => {
    await Promise.allSettled([kafka.stop(), ch.stop()])
  }
}
