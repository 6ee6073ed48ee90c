import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { openTestClickHouse } from '../support/clickhouse.ts'
import { makeEvent } from '../support/events.ts'
import { testConfig, testLogger, waitFor } from '../support/pipeline.ts'
import { createKafkaBus } from '../../shared/bus/kafka.ts'
import { createAggregator, type Aggregator } from '../../services/aggregator/service.ts'
import { createClickHouseUsageStore } from '../../services/aggregator/clickhouse-store.ts'
import { createRegistry } from '../../shared/metrics.ts'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import type { AppConfig } from '../../shared/config.ts'
import type { Bus } from '../../shared/bus/port.ts'
import type { WindowRecord } from '../../schemas/window.ts'

const brokers = inject('kafkaBrokers')
let ch: ClickHouseHandle

beforeAll(async () => {
  ch = await openTestClickHouse(inject('clickhouse'))
})
afterAll(async () => {
  await ch?.close()
})

const seriesKey = (e: { team: string; endpoint: string; model: string }) => JSON.stringify([e.team, e.endpoint, e.model])

async function produce(config: AppConfig, records: { key: string | null; value: string }[]) {
  const kafka = new Kafka({ clientId: 'test-producer', brokers, logLevel: logLevel.NOTHING })
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic: config.kafka.topics.events, numPartitions: 3 }], waitForLeaders: true })
  await admin.disconnect()
  const p = kafka.producer({ idempotent: true })
  await p.connect()
  for (let i = 0; i < records.length; i += 1000) await p.send({ topic: config.kafka.topics.events, acks: -1, messages: records.slice(i, i + 1000) })
  await p.disconnect()
}

async function totals(team?: string) {
  const rs = await ch.client.query({
    query: `SELECT count() AS n, uniqExact(event_id) AS ids, toString(sum(cost_usd)) AS cost, sum(input_tokens) AS input, countIf(late) AS late FROM usage_events ${team ? 'WHERE team = {team:String}' : ''}`,
    query_params: team ? { team } : {},
    format: 'JSONEachRow',
  })
  const [r] = await rs.json<{ n: number; ids: number; cost: string; input: number; late: number }>()
  return { n: Number(r!.n), ids: Number(r!.ids), cost: r!.cost, input: Number(r!.input), late: Number(r!.late) }
}

function start(config: AppConfig): { agg: Aggregator; bus: Bus } {
  const bus = createKafkaBus({ brokers, clientId: 'test', logger: testLogger() })
  const agg = createAggregator({ bus, store: createClickHouseUsageStore(ch.client, { stagingDir: ch.stagingDir }), config, logger: testLogger(), registry: createRegistry() })
  return { agg, bus }
}

describe('aggregator on the real broker and engine', () => {
  it('stores N events exactly, counts a duplicate once, dead-letters malformed records without losing neighbours', async () => {
    const config = testConfig(brokers)
    const base = Date.now() - 40 * 60_000
    // 30 minutes of event time (one event every 600 ms): the windows close by event time as the stream goes on
    // retries (migration 043) marked by either attribute name; '0' (a first attempt) is no retry
    const retryAttrs = (i: number): Record<string, string> | undefined =>
      i % 7 === 3 ? { 'http.request.resend_count': '1' } : i % 11 === 4 ? { retry_attempt: '2', tier: 'gold' } : i % 13 === 5 ? { 'http.request.resend_count': '0', retry_attempt: 'abc' } : undefined
    const events = Array.from({ length: 3000 }, (_, i) => makeEvent(i, { timestamp: new Date(base + i * 600).toISOString(), ...(retryAttrs(i) ? { attributes: retryAttrs(i) } : {}) }, base))
    const isRetried = (i: number) => i % 7 === 3 || (i % 7 !== 3 && i % 11 === 4)
    const records = events.map((e) => ({ key: seriesKey(e), value: JSON.stringify(e) }))
    // duplicates of event 5 and 2000, and malformed records in between
    records.splice(100, 0, { key: seriesKey(events[5]!), value: JSON.stringify(events[5]) })
    records.splice(200, 0, { key: seriesKey(events[0]!), value: '{"event_id": "broken", ' })
    records.splice(300, 0, { key: seriesKey(events[0]!), value: JSON.stringify({ ...events[1], event_id: 'neg', input_tokens: -5 }) })
    records.splice(400, 0, { key: seriesKey(events[0]!), value: JSON.stringify({ ...events[1], event_id: 'nan', cost_usd: 'NaN' }) })
    records.push({ key: seriesKey(events[2000]!), value: JSON.stringify(events[2000]) })
    await produce(config, records)

    const { agg, bus } = start(config)
    await agg.start()
    await waitFor('all records consumed', () => agg.stats().stored + agg.stats().duplicates + agg.stats().deadLettered >= records.length)
    await agg.stop()
    await bus.stop()

    const expectedCost = events.reduce((s, e) => s + e.cost_usd!, 0)
    const t = await totals()
    expect(t.n).toBe(3000)
    expect(t.ids).toBe(3000)
    expect(Number(t.cost)).toBeCloseTo(expectedCost, 9)
    expect(agg.stats().duplicates).toBe(2)
    expect(agg.stats().deadLettered).toBe(3)

    // the dead letters carry their reason
    const kafka = new Kafka({ clientId: 'dlq-reader', brokers, logLevel: logLevel.NOTHING })
    const c = kafka.consumer({ groupId: `dlq-${Date.now()}`, maxWaitTimeInMs: 100 })
    await c.connect()
    await c.subscribe({ topic: config.kafka.topics.deadLetter, fromBeginning: true })
    const reasons: string[] = []
    await c.run({ eachMessage: async ({ message }) => void reasons.push(String(message.headers?.reason)) })
    await waitFor('3 dead letters', () => reasons.length >= 3)
    await c.disconnect()
    expect(reasons.sort()).toEqual([
      expect.stringMatching(/cost_usd must be a finite number/),
      expect.stringMatching(/input_tokens must be ≥ 0/),
      expect.stringMatching(/not valid JSON/),
    ])

    // the windows PUBLISHED to cost.windows (not the view's table): each whole, and every window that
    // ended two minutes before the last event is out (the rest close by idle advance later)
    const expected = new Map<string, number>()
    const expectedRetries = new Map<string, number>()
    events.forEach((e, i) => {
      const t = Date.parse(e.timestamp)
      const k = `${seriesKey(e)}@${new Date(t - (t % 60_000)).toISOString()}`
      expected.set(k, (expected.get(k) ?? 0) + 1)
      expectedRetries.set(k, (expectedRetries.get(k) ?? 0) + (isRetried(i) ? 1 : 0))
    })
    const published = new Map<string, number>()
    const publishedRetries = new Map<string, number>()
    /** the cost by token component of each published window (uncached input, cache read, cache write, output) and its cost */
    const parts = new Map<string, { cost: number; components: number[] }>()
    const wc = kafka.consumer({ groupId: `windows-${Date.now()}`, maxWaitTimeInMs: 100 })
    await wc.connect()
    await wc.subscribe({ topic: config.kafka.topics.windows, fromBeginning: true })
    await wc.run({
      eachMessage: async ({ message }) => {
        const w = JSON.parse(String(message.value)) as WindowRecord
        published.set(`${seriesKey(w)}@${w.window_start}`, w.requests)
        publishedRetries.set(`${seriesKey(w)}@${w.window_start}`, w.retries ?? NaN)
        parts.set(`${seriesKey(w)}@${w.window_start}`, { cost: w.cost_usd, components: [w.cost_input_usd ?? NaN, w.cost_cache_read_usd ?? NaN, w.cost_cache_write_usd ?? NaN, w.cost_output_usd ?? NaN] })
      },
    })
    const lastEnd = base + 2999 * 600 - 120_000
    const due = [...expected.keys()].filter((k) => Date.parse(k.slice(k.lastIndexOf('@') + 1)) + 60_000 <= lastEnd)
    expect(due.length).toBeGreaterThan(50)
    await waitFor('the closed windows on cost.windows', () => due.every((k) => published.has(k)))
    await wc.disconnect()
    for (const [k, requests] of published) expect({ k, requests }).toEqual({ k, requests: expected.get(k) })
    // retries per window, counted from the events' attributes: on cost.windows and in cost_windows
    for (const [k, retries] of publishedRetries) expect({ k, retries }).toEqual({ k, retries: expectedRetries.get(k) })
    expect([...publishedRetries.values()].reduce((s, x) => s + x, 0)).toBeGreaterThan(100)
    const rr = await ch.client.query({ query: 'SELECT sum(retries) AS r, sum(requests) AS n FROM cost_windows', format: 'JSONEachRow' })
    const [storedRetries] = await rr.json<{ r: string | number; n: string | number }>()
    expect(Number(storedRetries!.n)).toBe(3000)
    expect(Number(storedRetries!.r)).toBe(events.filter((_, i) => isRetried(i)).length)

    // each window's cost split by token component (reported costs of a catalogued model split at
    // the catalog's ratios): on cost.windows, and the same in cost_windows, which the views fill
    const rs = await ch.client.query({
      query: `SELECT team, endpoint, model, formatDateTime(window_start, '%Y-%m-%dT%H:%i:00.000Z', 'UTC') AS ws,
                     sum(cost_input_usd) AS cu, sum(cost_cache_read_usd) AS cr, sum(cost_cache_write_usd) AS cw, sum(cost_output_usd) AS co
              FROM cost_windows GROUP BY team, endpoint, model, ws`,
      format: 'JSONEachRow',
    })
    const stored = new Map((await rs.json<{ team: string; endpoint: string; model: string; ws: string; cu: number; cr: number; cw: number; co: number }>()).map((r) => [`${seriesKey(r)}@${r.ws}`, [r.cu, r.cr, r.cw, r.co].map(Number)]))
    let split = 0
    for (const [k, p] of parts) {
      const sum = p.components.reduce((s, x) => s + x, 0)
      expect(sum, k).toBeCloseTo(p.cost, 9)
      if (p.components[0]! > 0 && p.components[3]! > 0) split++
      const inTable = stored.get(k)
      expect(inTable, k).toBeDefined()
      for (let j = 0; j < 4; j++) expect(inTable![j], `${k} component ${j}`).toBeCloseTo(p.components[j]!, 9)
    }
    expect(split).toBeGreaterThan(50)
  })

  it('stores a late event, flags it, and keeps the totals exact', async () => {
    const config = testConfig(brokers)
    const base = Date.now() - 60 * 60_000
    const onTime = Array.from({ length: 50 }, (_, i) => makeEvent(i, { team: 'late-team', endpoint: 'e', model: 'm', timestamp: new Date(base + i * 6_000).toISOString() }))
    // 10 minutes behind the stream of its partition: its window has closed
    const late = makeEvent(999, { team: 'late-team', endpoint: 'e', model: 'm', timestamp: new Date(base + 10_000).toISOString() })
    await produce(config, [...onTime, late].map((e) => ({ key: seriesKey(e), value: JSON.stringify(e) })))
    const { agg, bus } = start(config)
    await agg.start()
    await waitFor('51 events stored', () => agg.stats().stored >= 51)
    await agg.stop()
    await bus.stop()
    const t = await totals('late-team')
    expect(t.n).toBe(51)
    expect(t.late).toBe(1)
    expect(agg.stats().late).toBe(1)
  })

  it('after a restart, redelivered records are not stored twice', async () => {
    const config = testConfig(brokers)
    const events = Array.from({ length: 500 }, (_, i) => makeEvent(i, { team: 'restart-team' }, Date.now() - 20 * 60_000))
    await produce(config, events.map((e) => ({ key: seriesKey(e), value: JSON.stringify(e) })))
    const first = start(config)
    await first.agg.start()
    await waitFor('500 stored', () => first.agg.stats().stored >= 500)
    await first.agg.stop()
    await first.bus.stop()
    // a second aggregator in a NEW consumer group reads the topic from the start: every record is
    // already at or below the checkpoint kept in ClickHouse, so nothing is stored again
    const second = start(config)
    const agg2 = createAggregator({ bus: second.bus, store: createClickHouseUsageStore(ch.client, { stagingDir: ch.stagingDir }), config, logger: testLogger(), registry: createRegistry(), groupId: 'another-group' })
    await agg2.start()
    await waitFor('500 skipped', () => agg2.stats().skippedStored >= 500)
    await agg2.stop()
    await second.bus.stop()
    expect(agg2.stats().stored).toBe(0)
    expect((await totals('restart-team')).n).toBe(500)
  })
})
