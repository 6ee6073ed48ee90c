/**
 * A detector that restarts while the `alerts` table refuses writes (issue 12, drill
 * `alerts-refusal`): its rebuild recovers state changes that were published but never recorded;
 * it publishes them and retries recording them until the table accepts, instead of failing its
 * start (before, the stage process exited on the first refused INSERT).
 */
import { describe, expect, it } from 'vitest'
import { createDetector } from '../../services/detector/service.ts'
import type { ClickHouseAlertStore } from '../../services/detector/clickhouse-store.ts'
import { createInProcessBus } from '../../shared/bus/index.ts'
import { loadConfig } from '../../shared/config.ts'
import { DependencyError } from '../../shared/errors.ts'
import { createLogger } from '../../shared/logger.ts'
import { createRegistry } from '../../shared/metrics.ts'
import type { AlertRecord } from '../../schemas/alert.ts'
import { syntheticWindows } from '../drill/pages.ts'

describe('detector start while the alerts table refuses writes', () => {
  it('publishes the recovered state changes and retries recording them until the table accepts', async () => {
    const windows = syntheticWindows({ teams: 2, endpointsPerTeam: 3, windows: 120 })
    const attempts: AlertRecord[][] = []
    const refusals = 2
    const store = {
      async knownAlerts() {
        return new Set<string>()
      },
      async deploymentsSince() {
        return []
      },
      async *streamWindowsSince() {
        yield* windows
      },
      async insertAlerts(alerts: AlertRecord[]) {
        attempts.push(alerts)
        if (attempts.length <= refusals) throw new DependencyError('clickhouse', 'insert into alerts failed: Too many parts (0)', { code: '252', retriable: true })
      },
    } as unknown as ClickHouseAlertStore
    const bus = createInProcessBus()
    const config = loadConfig({ LOG_LEVEL: 'error' })
    const detector = createDetector({ bus, store, config, logger: createLogger({ level: 'silent' }), registry: createRegistry() })
    try {
      await detector.start()
      expect(attempts.length).toBe(refusals + 1)
      const recovered = attempts.at(-1)!
      expect(recovered.length).toBeGreaterThan(0)
      // the same state changes each time, published once
      for (const a of attempts) expect(a.map((x) => `${x.alert_id}/${x.status}`)).toEqual(recovered.map((x) => `${x.alert_id}/${x.status}`))
      const published: AlertRecord[] = []
      const consumer = bus.consumer({ groupId: 'reader', topics: [config.kafka.topics.alerts], fromBeginning: true })
      await consumer.start(async (batch) => {
        for (const m of batch.messages) published.push(JSON.parse(m.value) as AlertRecord)
      })
      await expect.poll(() => published.length).toBe(recovered.length)
      await consumer.stop()
    } finally {
      await detector.stop()
      await bus.stop()
    }
  })
})
