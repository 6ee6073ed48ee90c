/**
 * Wires the shared clients for a process: the bus (Kafka or in-process), ClickHouse (server or
 * chDB, migrated), the metrics registry. Plain factories, no singletons; `close()` in reverse order.
 */
import type { AppConfig } from '../shared/config.ts'
import type { Logger } from '../shared/logger.ts'
import { createBus, type Bus } from '../shared/bus/index.ts'
import { openClickHouse, type ClickHouseHandle } from '../shared/clickhouse/client.ts'
import { applySchema } from '../shared/clickhouse/sharded.ts'
import { ensureAnalystRole } from '../shared/clickhouse/roles.ts'
import { findEmbeddedServer, startEmbeddedServer, type EmbeddedServerResult } from '../shared/clickhouse/embedded-server.ts'
import { createRegistry, type Registry } from '../shared/metrics.ts'

export interface Runtime {
  config: AppConfig
  logger: Logger
  bus: Bus
  clickhouse: ClickHouseHandle
  /** embedded mode: the loopback server this process runs on its chDB data (null: chDB in-process, or a server URL) */
  embeddedServer: { url: string; tcpPort: number; passwordFile: string | null } | null
  registry: Registry
  close(): Promise<void>
}

/** `readOnly`: only reads ClickHouse (the dashboard alone, on a read-only login): no database creation, no migrations. */
export async function openRuntime(config: AppConfig, logger: Logger, opts: { bus?: Bus; readOnly?: boolean } = {}): Promise<Runtime> {
  const served = opts.readOnly ? ({ status: 'off' } as const) : await serveEmbeddedStore(config, logger, opts.bus)
  let clickhouse: ClickHouseHandle
  try {
    clickhouse = await openClickHouse(served.status === 'started' ? { ...config.clickhouse, url: served.info.url, user: 'default', password: '' } : config.clickhouse, { createDatabase: !opts.readOnly })
  } catch (err) {
    if (served.status === 'started') await served.stop()
    throw err
  }
  if (!opts.readOnly) {
    await applySchema(clickhouse, config.clickhouse)
    const role = await ensureAnalystRole(clickhouse)
    // the embedded server (this process's or a running start's) declares its read-only login in its config instead (it has no writable access storage)
    if (role.status === 'forbidden' && served.status !== 'started' && !clickhouse.embeddedServer) logger.warn({ role: role.role, fix: role.fix }, 'could not create the read-only analyst role')
  }
  const bus = opts.bus ?? createBus({ brokers: config.kafka.brokers, clientId: config.kafka.clientId, logger })
  const registry = createRegistry({ defaultMetrics: true })
  let closed = false
  return {
    config,
    logger,
    bus,
    clickhouse,
    embeddedServer: served.status === 'started' ? { url: served.info.url, tcpPort: served.info.tcpPort, passwordFile: served.passwordFile } : null,
    registry,
    async close() {
      if (closed) return
      closed = true
      await bus.stop()
      await clickhouse.close()
      if (served.status === 'started') await served.stop()
    },
  }
}

/**
 * Embedded mode (no Kafka, no CLICKHOUSE_URL, a data dir on disk): serve the chDB data as a
 * ClickHouse server on loopback so that other processes and ClickHouse tools reach it while this
 * runs. Falls back to chDB in-process, with a warning that says why, where no server can be launched.
 */
async function serveEmbeddedStore(config: AppConfig, logger: Logger, bus: Bus | undefined): Promise<EmbeddedServerResult | { status: 'off' }> {
  const c = config.clickhouse
  const embedded = (bus ? bus.kind === 'in-process' : !config.kafka.brokers) && c.url === null && c.dataDir !== ':memory:'
  if (!embedded || !c.embeddedServer?.enabled || (await findEmbeddedServer(c.dataDir))) return { status: 'off' }
  const served = await startEmbeddedServer(c.dataDir, c.database, c.embeddedServer)
  if (served.status === 'unavailable') {
    logger.warn({ reason: served.reason }, 'cannot serve the embedded store on loopback: using chDB in-process; other burnwatch commands and ClickHouse tools cannot open the store while this process runs')
  }
  return served
}
