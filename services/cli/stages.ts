/**
 * Runs one or more stages in this process until SIGTERM/SIGINT, then shuts down in order under
 * a deadline: stop intake (ingest), drain (aggregator, detector, notifier), flush, close clients.
 */
import type { AppConfig } from '../../shared/config.ts'
import { createLogger } from '../../shared/logger.ts'
import { openRuntime } from '../runtime.ts'
import { createAggregator } from '../aggregator/service.ts'
import { createClickHouseUsageStore } from '../aggregator/clickhouse-store.ts'

export type StageName = 'ingest' | 'aggregate' | 'detect' | 'notify'

interface Startable {
  start(): Promise<unknown>
  stop(): Promise<void>
}

export async function runStages(names: StageName[], config: AppConfig, out: NodeJS.WritableStream, opts: { shutdownDeadlineMs?: number } = {}): Promise<number> {
  const logger = createLogger({ level: config.logLevel, secrets: config.secrets })
  const rt = await openRuntime(config, logger)
  const stages: { name: StageName; s: Startable }[] = []
  if (names.includes('aggregate')) {
    stages.push({ name: 'aggregate', s: createAggregator({ bus: rt.bus, store: createClickHouseUsageStore(rt.clickhouse.client), config, logger, registry: rt.registry }) })
  }
  // start downstream first so nothing produced is missed, intake last
  for (const st of [...stages].reverse()) await st.s.start()
  out.write(`burnwatch: ${names.join(', ')} running (${rt.bus.kind} bus, ClickHouse ${rt.clickhouse.kind}). Ctrl-C to stop.\n`)
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })
  logger.info({ signal }, 'shutting down')
  const deadline = opts.shutdownDeadlineMs ?? 25_000
  const timer = setTimeout(() => {
    logger.error({ deadlineMs: deadline }, 'shutdown deadline passed; exiting')
    process.exit(1)
  }, deadline)
  timer.unref()
  // intake first, then the stages downstream of it
  for (const st of stages) await st.s.stop()
  await rt.close()
  clearTimeout(timer)
  return 0
}
