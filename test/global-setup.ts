/**
 * Starts the real services once for the whole test run and shares them through provide/inject:
 * Kafka (KAFKA_BROKERS, Testcontainers, or a local KRaft broker from the official jars) and
 * ClickHouse. The `integration` project gets the embedded path (chDB in-process) as `clickhouse`;
 * the `server` project runs some of the same files with `clickhouse` set to the server path
 * (CLICKHOUSE_URL, Testcontainers, or a local server from the chDB library). Both projects use
 * this file; the services start once (the first project to set up) and stop after the last.
 * No silent skips: when no Kafka or no ClickHouse server can be had, the run fails with what to install.
 */
import type { TestProject } from 'vitest/node'
import { provisionKafka } from './support/kafka.ts'
import { EMBEDDED_TARGET, provisionClickHouseServer, type ClickHouseTarget } from './support/clickhouse.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[]
    kafkaVersion: string
    clickhouse: ClickHouseTarget
  }
}

type Services = { kafka: Awaited<ReturnType<typeof provisionKafka>>; server: Awaited<ReturnType<typeof provisionClickHouseServer>> }
let services: Promise<Services> | null = null
let users = 0

export default async function setup(project: TestProject) {
  users++
  services ??= (async () => {
    const [kafka, server] = await Promise.all([provisionKafka(), provisionClickHouseServer()])
    console.log(`[burnwatch tests] Kafka ${kafka.version} (${kafka.source}) at ${kafka.brokers.join(',')}; ClickHouse: embedded path chDB, server path ${server.target.source} at ${server.target.url}`)
    return { kafka, server }
  })()
  const { kafka, server } = await services
  project.provide('kafkaBrokers', kafka.brokers)
  project.provide('kafkaVersion', kafka.version)
  project.provide('clickhouse', project.name === 'server' ? server.target : EMBEDDED_TARGET)
  return async () => {
    if (--users > 0) return
    services = null
    await Promise.allSettled([kafka.stop(), server.stop()])
  }
}
