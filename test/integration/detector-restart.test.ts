/**
 * The detector rebuilds its state from ClickHouse after a restart and does not page an open
 * break again: the second run's windows continue the same break, and cost.alerts carries one
 * `firing` for it.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Kafka, logLevel } from 'kafkajs'
import { startStages, type RunningStages } from '../../services/cli/stages.ts'
import { replay } from '../../services/cli/replay.ts'
import { generateTraffic, DEMO_SERIES } from '../../services/demo/traffic.ts'
import { loadConfig } from '../../shared/config.ts'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { testLogger, uniquePrefix, waitFor } from '../support/pipeline.ts'
import type { AlertRecord } from '../../schemas/alert.ts'

const running: RunningStages[] = []
afterAll(async () => {
  for (const r of running) await r.stop()
})
const quiet = () => new Writable({ write: (_c, _e, cb) => cb() })

describe('detector restart', () => {
  it('rebuilds from ClickHouse history: no second page for the open break, and it resolves after a rollback', { timeout: 240_000 }, async () => {
    const brokers = inject('kafkaBrokers')
    const config = loadConfig({ ...testClickHouseEnv(inject('clickhouse')), KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: uniquePrefix(), PORT: '0', LOG_LEVEL: 'warn' })
    const dir = mkdtempSync(join(tmpdir(), 'bw-restart-'))
    // part 1: 4 h, the last hour regressed by a deployment; part 2 (after the restart): the
    // deployment is rolled back for an hour, so the open break must resolve, which only a
    // detector that rebuilt its state (baseline and open alert) from ClickHouse can say
    const start = Math.floor(Date.now() / 60_000) * 60_000 - 310 * 60_000
    const cut = start + 240 * 60_000
    const series = DEMO_SERIES.slice(0, 1)
    const part1 = join(dir, 'part1.ndjson')
    const part2 = join(dir, 'part2.ndjson')
    const ndjson = (events: Iterable<unknown>) => [...events].map((e) => JSON.stringify(e)).join('\n') + '\n'
    writeFileSync(part1, ndjson(generateTraffic({ start, minutes: 240, series, seed: 3, regression: { team: 'search', endpoint: 'POST /v1/summarize', at: start + 180 * 60_000, deployment_id: 'search-api-bad', outputFactor: 1.6 } })))
    writeFileSync(part2, ndjson(generateTraffic({ start: cut, minutes: 60, series, seed: 4 })))

    const alertsOnTopic = async (): Promise<AlertRecord[]> => {
      const kafka = new Kafka({ clientId: 'alerts-reader', brokers, logLevel: logLevel.NOTHING })
      const admin = kafka.admin()
      await admin.connect()
      const ends = await admin.fetchTopicOffsets(config.kafka.topics.alerts)
      await admin.disconnect()
      const total = ends.reduce((s, p) => s + Number(p.high), 0)
      const c = kafka.consumer({ groupId: `reader-${Math.random()}`, maxWaitTimeInMs: 100 })
      await c.connect()
      await c.subscribe({ topic: config.kafka.topics.alerts, fromBeginning: true })
      const out: AlertRecord[] = []
      await c.run({ eachMessage: async ({ message }) => void out.push(JSON.parse(String(message.value)) as AlertRecord) })
      await waitFor('all alert records read', () => out.length >= total, 30_000)
      await c.disconnect()
      return out
    }

    const first = await startStages(['ingest', 'aggregate', 'detect'], config, testLogger(), { out: quiet() })
    running.push(first)
    expect((await replay({ eventsPath: part1, url: first.ingestUrl!, rate: 0 })).rejected).toBe(0)
    await waitFor('the break to fire', async () => (await alertsOnTopic()).some((a) => a.status === 'firing' && a.endpoint === 'POST /v1/summarize'), 90_000)
    await first.stop()

    const second = await startStages(['ingest', 'aggregate', 'detect'], config, testLogger(), { out: quiet() })
    running.push(second)
    expect((await replay({ eventsPath: part2, url: second.ingestUrl!, rate: 0 })).rejected).toBe(0)
    await waitFor('the second run to consume its windows', async () => (await second.runtime.bus.lag('burnwatch-aggregator', config.kafka.topics.events)) === 0 && (await second.runtime.bus.lag('burnwatch-detector', config.kafka.topics.windows)) === 0, 90_000)
    await second.stop()

    const alerts = await alertsOnTopic()
    const firing = alerts.filter((a) => a.status === 'firing' && a.endpoint === 'POST /v1/summarize' && a.signal === 'cost_per_request')
    expect(firing.length).toBe(1)
    expect(firing[0]!.deployment_ids[0]).toBe('search-api-bad')
    // the rebuilt detector knew the break was open and resolved it after the rollback
    expect(alerts.filter((a) => a.alert_id === firing[0]!.alert_id).map((a) => a.status)).toContain('resolved')
    // every state change appears once on the topic
    const keys = alerts.map((a) => `${a.alert_id}/${a.status}`)
    expect(new Set(keys).size).toBe(keys.length)
  })
})
