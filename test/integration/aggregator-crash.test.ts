/**
 * kill -9 of the aggregator process mid-stream, then a restart: ClickHouse totals equal the
 * input exactly, neither short nor doubled. The aggregator runs as `burnwatch aggregate`.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Kafka, logLevel } from 'kafkajs'
import { makeEvent } from '../support/events.ts'
import { uniquePrefix, waitFor } from '../support/pipeline.ts'
import { startBurnwatch, type Child } from '../support/processes.ts'
import { openClickHouse } from '../../shared/clickhouse/client.ts'
import { topicNames } from '../../shared/config.ts'

const brokers = inject('kafkaBrokers')
const target = inject('clickhouse')
const children: Child[] = []
afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
})

describe('aggregator killed with SIGKILL mid-stream', () => {
  it('leaves exact totals after a restart', { timeout: 240_000 }, async () => {
    const prefix = uniquePrefix()
    const topics = topicNames(prefix)
    const dataDir = mkdtempSync(join(tmpdir(), 'bw-crash-'))
    const database = `crash_${prefix.slice(1, -1)}`
    const env: Record<string, string> = {
      KAFKA_BROKERS: brokers.join(','),
      KAFKA_TOPIC_PREFIX: prefix,
      BURNWATCH_DATA_DIR: dataDir,
      CLICKHOUSE_DATABASE: database,
      ...(target.url ? { CLICKHOUSE_URL: target.url, CLICKHOUSE_USER: target.user, CLICKHOUSE_PASSWORD: target.password } : {}),
    }
    const N = 60_000
    const base = Date.now() - 40 * 60_000
    const events = Array.from({ length: N }, (_, i) => makeEvent(i, { team: `crash-${i % 5}` }, base))
    const kafka = new Kafka({ clientId: 'crash-test', brokers, logLevel: logLevel.NOTHING })
    const admin = kafka.admin()
    await admin.connect()
    await admin.createTopics({ topics: [{ topic: topics.events, numPartitions: 3 }], waitForLeaders: true })
    const producer = kafka.producer()
    await producer.connect()
    for (let i = 0; i < N; i += 5000) {
      await producer.send({ topic: topics.events, acks: -1, messages: events.slice(i, i + 5000).map((e) => ({ key: `${e.team}|${e.endpoint}|${e.model}`, value: JSON.stringify(e) })) })
    }
    await producer.disconnect()

    const committed = async () => {
      const o = await admin.fetchOffsets({ groupId: 'burnwatch-aggregator', topics: [topics.events] })
      return (o[0]?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0)
    }

    const first = startBurnwatch(['aggregate'], env)
    children.push(first)
    await waitFor('the first commit', async () => (await committed()) > 0, 60_000, 20).catch((err: unknown) => {
      throw new Error(`${String(err)}\n--- aggregator output ---\n${first.output().slice(-3000)}`)
    })
    first.kill('SIGKILL')
    expect(await first.exited).toBe(null)
    const atKill = await committed()
    expect(atKill).toBeLessThan(N) // it really died mid-stream

    // the records are keyed `team|endpoint|model`, not by the series key: the aggregator re-keys them
    // onto their series' partitions, so the topic ends up longer than N; all of it must be committed
    const end = async () => (await admin.fetchTopicOffsets(topics.events)).reduce((s, p) => s + Number(p.high), 0)
    const second = startBurnwatch(['aggregate'], env)
    children.push(second)
    await waitFor('all offsets committed', async () => (await committed()) === (await end()), 180_000, 300)
    second.kill('SIGTERM')
    expect(await second.exited).toBe(0)
    await admin.disconnect()

    const h = await openClickHouse({ url: target.url, user: target.user, password: target.password, database, dataDir })
    try {
      const rs = await h.client.query({ query: 'SELECT count() AS n, uniqExact(event_id) AS ids, toString(sum(cost_usd)) AS cost FROM usage_events', format: 'JSONEachRow' })
      const [r] = await rs.json<{ n: number; ids: number; cost: string }>()
      const expected = events.reduce((s, e) => s + Math.round(e.cost_usd! * 1e6), 0) / 1e6
      expect({ n: Number(r!.n), ids: Number(r!.ids) }).toEqual({ n: N, ids: N })
      expect(Number(r!.cost)).toBeCloseTo(expected, 6)
      // the rollups (materialized views; repaired at start if a crash cut an insert short) agree
      for (const table of ['cost_windows', 'cost_hourly', 'cost_daily']) {
        const w = await h.client.query({ query: `SELECT sum(requests) AS r, toString(sum(cost_usd)) AS c FROM ${table}`, format: 'JSONEachRow' })
        const [agg] = await w.json<{ r: number; c: string }>()
        expect({ table, r: Number(agg!.r), c: agg!.c }).toEqual({ table, r: N, c: r!.cost })
      }
    } finally {
      await h.close()
    }
    console.log(`[crash] killed at ${atKill}/${N} committed; restart stored the rest exactly once`)
  })
})
