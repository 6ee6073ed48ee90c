/**
 * `burnwatch notify`: the notifier as its own process (distributed mode), thin: open the bus and
 * ClickHouse, apply migrations (idempotent), start; `stop()` closes in reverse order.
 */
import type { Writable } from 'node:stream'
import { createBus } from '../../shared/bus/index.ts'
import { openClickHouse } from '../../shared/clickhouse/client.ts'
import { migrate } from '../../shared/clickhouse/migrate.ts'
import type { AppConfig } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Registry } from '../../shared/metrics.ts'
import { createNotifier, type Notifier } from './service.ts'

export async function runNotifierStage(o: { config: AppConfig; logger: Logger; registry?: Registry; consoleStream?: Writable }): Promise<{ notifier: Notifier; stop(): Promise<void> }> {
  const { config, logger } = o
  const ch = await openClickHouse(config.clickhouse)
  await migrate(ch.client)
  const bus = createBus({ brokers: config.kafka.brokers, clientId: `${config.kafka.clientId}-notifier`, logger })
  const notifier = createNotifier({ bus, clickhouse: ch, config, logger, ...(o.registry ? { registry: o.registry } : {}), ...(o.consoleStream ? { consoleStream: o.consoleStream } : {}) })
  await notifier.start()
  let stopping: Promise<void> | null = null
  return {
    notifier,
    stop() {
      stopping ??= (async () => {
        await notifier.stop()
        await bus.stop()
        await ch.close()
      })()
      return stopping
    },
  }
}
