/**
 * Wires the shared clients for a process: the bus (Kafka or in-process), ClickHouse (server or
 * chDB, migrated), the metrics registry. Plain factories, no singletons; `close()` in reverse order.
 */
import type { AppConfig } from '../shared/config.ts'
import type { Logger } from '../shared/logger.ts'
import { createBus, type Bus } from '../shared/bus/index.ts'
import { openClickHouse, type ClickHouseHandle } from '../shared/clickhouse/client.ts'
import { migrate } from '../shared/clickhouse/migrate.ts'
import { ensureAnalystRole } from '../shared/clickhouse/roles.ts'
import { createRegistry, type Registry } from '../shared/metrics.ts'

export interface Runtime {
  config: AppConfig
  logger: Logger
  bus: Bus
  clickhouse: ClickHouseHandle
  registry: Registry
  close(): Promise<void>
}

/** `readOnly`: only reads ClickHouse (the dashboard alone, on a read-only login): no database creation, no migrations. */
export async function openRuntime(config: AppConfig, logger: Logger, opts: { bus?: Bus; readOnly?: boolean } = {}): Promise<Runtime> {
  const clickhouse = await openClickHouse(config.clickhouse, { createDatabase: !opts.readOnly })
  if (!opts.readOnly) {
    await migrate(clickhouse.client)
    const role = await ensureAnalystRole(clickhouse)
    if (role.status === 'forbidden') logger.warn({ role: role.role, fix: role.fix }, 'could not create the read-only analyst role')
  }
  const bus = opts.bus ?? createBus({ brokers: config.kafka.brokers, clientId: config.kafka.clientId, logger })
  const registry = createRegistry({ defaultMetrics: true })
  let closed = false
  return {
    config,
    logger,
    bus,
    clickhouse,
    registry,
    async close() {
      if (closed) return
      closed = true
      await bus.stop()
      await clickhouse.close()
    },
  }
}
