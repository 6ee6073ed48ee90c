/**
 * N events over HTTP give exact totals in ClickHouse, on the real broker and engine; a batch
 * resent after a lost answer (same event_ids) counts once.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { Writable } from 'node:stream'
import { startStages, type RunningStages } from '../../services/cli/stages.ts'
import { loadConfig } from '../../shared/config.ts'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { makeEvent } from '../support/events.ts'
import { testLogger, uniquePrefix, waitFor } from '../support/pipeline.ts'

let running: RunningStages | null = null
afterAll(async () => {
  await running?.stop()
})

describe('HTTP ingest → Kafka → aggregator → ClickHouse', () => {
  it('stores N events exactly once with exact cost totals', { timeout: 120_000 }, async () => {
    const config = loadConfig({ ...testClickHouseEnv(inject('clickhouse')), KAFKA_BROKERS: inject('kafkaBrokers').join(','), KAFKA_TOPIC_PREFIX: uniquePrefix(), PORT: '0', LOG_LEVEL: 'warn' })
    running = await startStages(['ingest', 'aggregate'], config, testLogger(), { out: new Writable({ write: (_c, _e, cb) => cb() }) })
    const url = running.ingestUrl!
    const N = 4000
    const base = Date.now() - 30 * 60_000
    const events = Array.from({ length: N }, (_, i) => makeEvent(i, { team: `http-${i % 4}`, cost_usd: Number(((i % 113) / 1e5).toFixed(8)) }, base))
    const post = (batch: unknown[]) => fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: batch.map((e) => JSON.stringify(e)).join('\n') })
    for (let i = 0; i < N; i += 500) expect((await post(events.slice(i, i + 500))).status).toBe(202)
    // a client that lost the 202 resends a whole batch
    expect((await post(events.slice(1000, 1500))).status).toBe(202)

    const ch = running.runtime.clickhouse.client
    const totals = async () => {
      const rs = await ch.query({ query: 'SELECT count() AS n, uniqExact(event_id) AS ids, toString(sum(cost_usd)) AS cost, sum(input_tokens) AS input FROM usage_events', format: 'JSONEachRow' })
      const [r] = await rs.json<{ n: number; ids: number; cost: string; input: number }>()
      return { n: Number(r!.n), ids: Number(r!.ids), cost: r!.cost, input: Number(r!.input) }
    }
    await waitFor('all events stored', async () => (await totals()).n >= N && (await running!.runtime.bus.lag('burnwatch-aggregator', config.kafka.topics.events)) === 0)
    const t = await totals()
    const expectedCost = events.reduce((s, e) => s + Math.round(e.cost_usd! * 1e8), 0) / 1e8
    expect({ n: t.n, ids: t.ids, input: t.input }).toEqual({ n: N, ids: N, input: events.reduce((s, e) => s + e.input_tokens, 0) })
    expect(Number(t.cost)).toBeCloseTo(expectedCost, 8)
    const rs = await ch.query({ query: 'SELECT team, sum(requests) AS r FROM cost_windows GROUP BY team ORDER BY team', format: 'JSONEachRow' })
    expect((await rs.json<{ team: string; r: number }>()).map((x) => [x.team, Number(x.r)])).toEqual([0, 1, 2, 3].map((k) => [`http-${k}`, N / 4]))
  })
})
