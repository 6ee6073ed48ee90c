/**
 * Drill: the `alerts` table refuses writes for 30 s while the detector pages (issue 12). The
 * detector runs in this process on the real broker and chDB, with its alert store failing every
 * insert (a retriable DependencyError, as a ClickHouse outage gives) for 30 s from the moment the
 * first break fires. Before the stage runner the detector applied its state before publishing and
 * recording, so a failed write lost the page; now every state change of a reference core fed the
 * same windows must be on cost.alerts exactly as often as distinct (alert_id, status) pairs, and
 * in the `alerts` table once the table accepts writes again.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { openDrillClickHouse } from './outages.ts'
import { loadConfig } from '../../shared/config.ts'
import { createLogger } from '../../shared/logger.ts'
import { createRegistry } from '../../shared/metrics.ts'
import { createBus } from '../../shared/bus/index.ts'
import { DependencyError } from '../../shared/errors.ts'
import { createDetector } from '../../services/detector/service.ts'
import { createClickHouseAlertStore } from '../../services/detector/clickhouse-store.ts'
import { createDetectorCore } from '../../services/detector/core/index.ts'
import { detectorConfig } from '../../services/detector/config.ts'
import type { AlertRecord } from '../../schemas/alert.ts'
import { ensureTopic, kafkaClient, log, prefix, readTopic, result, topicsOf, waitUntil, type DrillResult } from './lib.ts'
import { syntheticWindows, type WindowPlan } from './pages.ts'
import { groupLag } from '../../shared/bus/kafka.ts'

export const REFUSAL_MS = 30_000

export async function alertsRefusal(brokers: string[]): Promise<DrillResult> {
  const p = prefix('ar')
  const topics = topicsOf(p)
  const logger = createLogger({ level: 'error' })
  const config = loadConfig({ KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: p, LOG_LEVEL: 'error' })
  // chDB is one engine per process: the same data dir as the other in-process drills, a database of its own
  const h = await openDrillClickHouse('drill_alerts_refusal')
  const bus = createBus({ brokers, clientId: 'drill-ar', logger })
  const real = createClickHouseAlertStore(h.client)
  let refuseUntil = 0
  let refused = 0
  const store: typeof real = {
    ...real,
    async insertAlerts(alerts: AlertRecord[]) {
      if (alerts.length && refuseUntil === 0) {
        refuseUntil = Date.now() + REFUSAL_MS
        log(`alerts-refusal: the alerts table refuses writes for ${REFUSAL_MS / 1000} s from the first page on`)
      }
      if (Date.now() < refuseUntil) {
        refused++
        throw new DependencyError('clickhouse', 'insert into alerts failed: connect ECONNREFUSED (drill: the alerts table refuses writes)', { code: 'ECONNREFUSED', retriable: true })
      }
      return real.insertAlerts(alerts)
    },
  }
  const detector = createDetector({ bus, store, config, logger, registry: createRegistry() })
  const admin = kafkaClient(brokers).admin()
  try {
    // one partition: the windows reach the detector in the order the reference core sees them
    await ensureTopic(brokers, topics.windows, 1)
    await admin.connect()
    const plan: WindowPlan = { teams: 6, endpointsPerTeam: 3, windows: 120 }
    const windows = syntheticWindows(plan)
    const core = createDetectorCore(detectorConfig(config.file))
    const reference = windows.flatMap((w) => core.onWindow(w))
    const expected = new Set(reference.map((a) => `${a.alert_id}/${a.status}`))
    await detector.start()
    const producer = kafkaClient(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const perMinute = plan.teams * plan.endpointsPerTeam
    for (let i = 0; i < windows.length; i += perMinute) {
      await producer.send({ topic: topics.windows, acks: -1, messages: windows.slice(i, i + perMinute).map((w) => ({ key: w.team, value: JSON.stringify(w) })) })
      await sleep(20)
    }
    await producer.disconnect()
    await waitUntil('the first page', () => refuseUntil > 0, 60_000, 100)
    await sleep(Math.max(0, refuseUntil - Date.now()))
    await waitUntil('the detector to drain cost.windows', async () => (await groupLag(admin, 'burnwatch-detector', topics.windows)) === 0, 90_000, 200)
    await detector.stop()
    const published = (await readTopic(brokers, topics.alerts)).map((r) => JSON.parse(r.value) as AlertRecord)
    const keys = published.map((a) => `${a.alert_id}/${a.status}`)
    const distinct = new Set(keys)
    const lost = [...expected].filter((k) => !distinct.has(k)).length
    const unexpected = [...distinct].filter((k) => !expected.has(k)).length
    const rs = await h.client.query({ query: 'SELECT count() AS n, uniqExact(alert_id, status) AS k FROM alerts', format: 'JSONEachRow' })
    const [t] = await rs.json<{ n: number; k: number }>()
    const recorded = Number(t?.k ?? 0)
    const notes = [`${refused} inserts into alerts refused over ${REFUSAL_MS / 1000} s; ${reference.length} reference state changes, ${distinct.size} on cost.alerts (${keys.length} records), ${recorded} in the alerts table`]
    if (unexpected) notes.push(`${unexpected} state changes the reference core did not make`)
    return result('alerts table refusing 30 s', { pagesExpected: expected.size, pagesDelivered: expected.size - lost, lost, duplicates: keys.length - distinct.size }, notes, unexpected === 0 && refused > 0 && recorded === expected.size)
  } finally {
    await detector.stop().catch(() => {})
    await admin.disconnect().catch(() => {})
    await bus.stop().catch(() => {})
    await h.close()
  }
}
