/**
 * The aggregator's ClickHouse writes: the RowBinary bulk path (chDB) stores exactly what the
 * JSONCompactEachRow path stores, and a retried INSERT of a batch (same token) counts once in
 * usage_events and in every rollup view.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { openTestClickHouse } from '../support/clickhouse.ts'
import { createClickHouseUsageStore, encodeUsageRows, type UsageRow } from '../../services/aggregator/clickhouse-store.ts'
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chooseStagingDir, type ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { createClickHouseAlertStore } from '../../services/detector/clickhouse-store.ts'

let ch: ClickHouseHandle
beforeAll(async () => {
  ch = await openTestClickHouse(inject('clickhouse'))
})
afterAll(async () => {
  await ch?.close()
})

const now = Date.now() - 5 * 60_000
function rows(topic: string, n: number): UsageRow[] {
  const names = ['search', "it's \\ \"quoted\"\n\ttabbed", 'ünïcødé ✓ 日本語', 'x'.repeat(42), 'y'.repeat(43), 'é'.repeat(200), '']
  return Array.from({ length: n }, (_, i) => ({
    event_id: `e-${i}-${names[i % names.length]}`,
    timestamp: now + i * 1234 + (i % 7),
    team: `team-${i % 3}`,
    endpoint: names[i % names.length]!,
    model: i % 2 ? 'gpt-4o' : 'claude-sonnet-4',
    provider: i % 2 ? 'openai' : '',
    service: names[(i + 3) % names.length]!,
    deployment_id: i % 5 ? `dep-${i % 4}` : '',
    input_tokens: 1 + i * 977,
    output_tokens: i === 3 ? 2 ** 40 + 3 : i * 13,
    cache_read_tokens: i % 4,
    cache_write_tokens: i % 3,
    reasoning_tokens: i % 5,
    environment: ['production', 'staging', names[i % names.length]!.slice(0, 64) || 'dev'][i % 3]!,
    // cost by token component (migration 042), distinct per component so a swap shows
    cost_input_usd: i * 0.001,
    cost_cache_read_usd: (i % 4) * 1e-6,
    cost_cache_write_usd: (i % 3) * 3e-6,
    cost_output_usd: i * 0.0025 + 1e-9,
    // a retry (migration 043) on another pattern than the errors, so the two counts differ
    retry: i % 4 === 1,
    batch: i % 2 === 0,
    // small, sub-cent, and large costs (the last above 10^15 in units of 10^-12 USD)
    cost_usd: [0, 0.000001234567, 0.5, 12.345678901234, 98765.4321, 1e-12][i % 6]!.toFixed(12),
    cost_source: i % 2 ? 'catalog' : 'reported',
    unpriced: i % 9 === 0,
    gpu_seconds: i * 0.25,
    latency_ms: 100.5 + i,
    status: i % 10 === 0 ? 'error' : 'ok',
    attributes: (i % 3 ? { tier: names[i % names.length]!, [names[(i + 1) % names.length]!]: 'v' } : {}) as Record<string, string>,
    late: i % 8 === 0,
    kafka_topic: topic,
    kafka_partition: i % 3,
    kafka_offset: 2 ** 33 + i,
  }))
}

async function stored(topic: string) {
  const rs = await ch.client.query({
    query: `SELECT * EXCEPT (ingested_at, kafka_topic), toString(cost_usd) AS cost_usd, toUnixTimestamp64Milli(timestamp) AS timestamp FROM usage_events WHERE kafka_topic = {topic:String} ORDER BY kafka_offset`,
    query_params: { topic },
    format: 'JSONEachRow',
  })
  return rs.json<Record<string, unknown>>()
}

async function rollupRequests(topic: string) {
  const rs = await ch.client.query({
    query: `SELECT
      (SELECT count() FROM usage_events WHERE kafka_topic = {topic:String}) AS events,
      (SELECT sum(requests) FROM cost_windows WHERE team IN (SELECT team FROM usage_events WHERE kafka_topic = {topic:String})) AS windows,
      (SELECT sum(requests) FROM cost_hourly WHERE team IN (SELECT team FROM usage_events WHERE kafka_topic = {topic:String})) AS hourly,
      (SELECT sum(requests) FROM cost_daily WHERE team IN (SELECT team FROM usage_events WHERE kafka_topic = {topic:String})) AS daily`,
    query_params: { topic },
    format: 'JSONEachRow',
  })
  const [r] = await rs.json<Record<string, number | string>>()
  return Object.fromEntries(Object.entries(r!).map(([k, v]) => [k, Number(v)]))
}

describe('usage_events writes', () => {
  it('never stages files under a path that file() would read as a glob (such an INSERT would store nothing)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-glob-{1}-'))
    const chosen = chooseStagingDir(join(dir, 'chdb-staging', 'db'))
    expect(chosen.temporary).toBe(true)
    expect(chosen.path).not.toMatch(/[*?{}[\]]/)
    rmSync(chosen.path, { recursive: true, force: true })
    const plain = mkdtempSync(join(tmpdir(), 'bw-plain-'))
    writeFileSync(join(plain, 'usage-1-left-over.rowbinary'), 'x')
    expect(chooseStagingDir(plain)).toEqual({ path: plain, temporary: false })
    expect(readdirSync(plain)).toEqual([]) // a killed process's leftovers are removed
    expect(() => createClickHouseUsageStore(ch.client, { stagingDir: join(dir, 'x') })).toThrow(/read it as a pattern/)
  })

  it('RowBinary through a staging file stores exactly what JSONCompactEachRow stores', async () => {
    expect(ch.kind === 'server' || ch.stagingDir !== null).toBe(true)
    const json = createClickHouseUsageStore(ch.client, { stagingDir: null })
    await json.insertEvents(rows('json', 60), 'json-1')
    const staged = createClickHouseUsageStore(ch.client, { stagingDir: ch.stagingDir })
    await staged.insertEvents(rows('bin', 60), 'bin-1')
    const a = await stored('json')
    const b = await stored('bin')
    expect(a).toHaveLength(60)
    expect(b).toEqual(a)
    // and both are the rows that were written
    const first = rows('x', 5)[4]!
    expect(b[4]).toMatchObject({ endpoint: first.endpoint, cost_usd: (98765.4321).toFixed(12), output_tokens: first.output_tokens, timestamp: first.timestamp })
    expect(b[3]).toMatchObject({ output_tokens: 2 ** 40 + 3, kafka_offset: 2 ** 33 + 3 })
  })

  for (const path of ['staged', 'json'] as const) {
    it(`a retried INSERT of the same batch counts once in usage_events and in every rollup (${path})`, async () => {
      const topic = `retry-${path}`
      const store = createClickHouseUsageStore(ch.client, { stagingDir: path === 'staged' ? ch.stagingDir : null })
      const batch = rows(topic, 30).map((r) => ({ ...r, team: `${topic}-team` }))
      await store.insertEvents(batch, `${topic}:0:0-29`)
      await store.insertEvents(batch, `${topic}:0:0-29`)
      expect(await rollupRequests(topic)).toEqual({ events: 30, windows: 30, hourly: 30, daily: 30 })
      // another batch with other rows is stored
      await store.insertEvents(rows(topic, 40).slice(30).map((r) => ({ ...r, team: `${topic}-team` })), `${topic}:0:30-39`)
      expect(await rollupRequests(topic)).toEqual({ events: 40, windows: 40, hourly: 40, daily: 40 })
    })
  }

  for (const path of ['staged', 'json'] as const) {
    it(`the cost of each token component reaches cost_windows, cost_windows_env and the detector's rebuild from history (${path})`, async () => {
      const topic = `components-${path}`
      const team = `${topic}-team`
      const store = createClickHouseUsageStore(ch.client, { stagingDir: path === 'staged' ? ch.stagingDir : null })
      const batch = rows(topic, 40).map((r) => ({ ...r, team, late: false }))
      await store.insertEvents(batch, `${topic}:0:0-39`)
      const expected = { cost_input_usd: 0, cost_cache_read_usd: 0, cost_cache_write_usd: 0, cost_output_usd: 0 }
      for (const r of batch) for (const k of Object.keys(expected) as (keyof typeof expected)[]) expected[k] += r[k]
      expect(expected.cost_cache_read_usd).toBeGreaterThan(0)
      expect(expected.cost_cache_write_usd).toBeGreaterThan(0)
      for (const table of ['cost_windows', 'cost_windows_env']) {
        const rs = await ch.client.query({
          query: `SELECT sum(cost_input_usd) AS cost_input_usd, sum(cost_cache_read_usd) AS cost_cache_read_usd, sum(cost_cache_write_usd) AS cost_cache_write_usd, sum(cost_output_usd) AS cost_output_usd FROM ${table} WHERE team = {team:String}`,
          query_params: { team },
          format: 'JSONEachRow',
        })
        const [got] = await rs.json<Record<string, number>>()
        for (const [k, v] of Object.entries(expected)) expect(Number(got![k]), `${table}.${k}`).toBeCloseTo(v, 9)
      }
      // the detector rebuilds its windows from cost_windows_env with the components
      const from = Math.min(...batch.map((r) => r.timestamp)) - 60_000
      const to = Math.max(...batch.map((r) => r.timestamp)) + 60_000
      const got = { cost_input_usd: 0, cost_cache_read_usd: 0, cost_cache_write_usd: 0, cost_output_usd: 0 }
      let requests = 0
      for await (const w of createClickHouseAlertStore(ch.client).streamWindowsSince(from, to, 60_000)) {
        if (w.team !== team) continue
        requests += w.requests
        for (const k of Object.keys(got) as (keyof typeof got)[]) got[k] += w[k] ?? NaN
      }
      expect(requests).toBe(40)
      for (const [k, v] of Object.entries(expected)) expect(got[k as keyof typeof got], `rebuilt ${k}`).toBeCloseTo(v, 9)
    })

    it(`retries reach cost_windows, cost_windows_env and the detector's rebuild from history, apart from errors (${path})`, async () => {
      const topic = `retries-${path}`
      const team = `${topic}-team`
      const store = createClickHouseUsageStore(ch.client, { stagingDir: path === 'staged' ? ch.stagingDir : null })
      const batch = rows(topic, 40).map((r) => ({ ...r, team, late: false }))
      await store.insertEvents(batch, `${topic}:0:0-39`)
      const retries = batch.filter((r) => r.retry).length
      const errors = batch.filter((r) => r.status === 'error').length
      expect(retries).toBe(10)
      expect(errors).toBe(4)
      const stored = await ch.client.query({ query: `SELECT sum(retry) AS n FROM usage_events WHERE team = {team:String}`, query_params: { team }, format: 'JSONEachRow' })
      expect(Number((await stored.json<{ n: string }>())[0]!.n)).toBe(retries)
      for (const table of ['cost_windows', 'cost_windows_env']) {
        const rs = await ch.client.query({
          query: `SELECT sum(retries) AS retries, sum(errors) AS errors FROM ${table} WHERE team = {team:String}`,
          query_params: { team },
          format: 'JSONEachRow',
        })
        const [got] = await rs.json<Record<string, number | string>>()
        expect(Number(got!.retries), `${table}.retries`).toBe(retries)
        expect(Number(got!.errors), `${table}.errors`).toBe(errors)
      }
      const from = Math.min(...batch.map((r) => r.timestamp)) - 60_000
      const to = Math.max(...batch.map((r) => r.timestamp)) + 60_000
      let rebuilt = 0
      for await (const w of createClickHouseAlertStore(ch.client).streamWindowsSince(from, to, 60_000)) if (w.team === team) rebuilt += w.retries ?? NaN
      expect(rebuilt).toBe(retries)
    })
  }

  it('refuses a cost that is not a decimal instead of storing a wrong value', () => {
    for (const cost of ['1e-7', '1.2.3', '-', 'NaN', '0.0000000000001']) expect(() => encodeUsageRows([{ ...rows('bad', 1)[0]!, cost_usd: cost }]), cost).toThrow(/not a decimal with 12 decimals/)
    expect(() => encodeUsageRows([{ ...rows('bad', 1)[0]!, cost_usd: `${'9'.repeat(27)}.000000000000` }])).toThrow(/out of range for Decimal\(38, 12\)/)
  })

  it('leaves no insert setting behind on the session (chDB turns per-query settings into session SETs)', async () => {
    const store = createClickHouseUsageStore(ch.client, { stagingDir: null })
    await store.insertEvents(rows('leak', 3), 'leak:0:0-2')
    const rs = await ch.client.query({ query: `SELECT name, value FROM system.settings WHERE name IN ('insert_deduplication_token', 'deduplicate_blocks_in_dependent_materialized_views') AND changed`, format: 'JSONEachRow' })
    expect(await rs.json()).toEqual([])
  })

  it('one batch over 101 calendar months: one INSERT of it is refused by ClickHouse, insertEvents splits it and stores every row', async () => {
    const store = createClickHouseUsageStore(ch.client, { stagingDir: ch.stagingDir })
    const spread = rows('months', 500).map((r, i) => {
      const d = new Date()
      d.setUTCMonth(d.getUTCMonth() - (i % 101), 1)
      return { ...r, event_id: `months-${i}`, timestamp: d.getTime(), late: false }
    })
    // the defect: ClickHouse refuses an insert block over more than max_partitions_per_insert_block (100) months
    await expect(store.insertBlock(spread, 'months:0:0-499:single')).rejects.toMatchObject({ code: '252' })
    await store.insertEvents(spread, 'months:0:0-499')
    // rows older than the raw TTL may be dropped on insert; every month kept by it is there, whole
    const rs = await ch.client.query({ query: `SELECT count() AS n, uniqExact(toYYYYMM(timestamp)) AS months FROM usage_events WHERE kafka_topic = 'months'`, format: 'JSONEachRow' })
    const [r] = await rs.json<{ n: number | string; months: number | string }>()
    expect(Number(r!.n)).toBeGreaterThan(0)
    const ttlKept = spread.filter((x) => x.timestamp >= Date.now() - 90 * 86_400_000 + 86_400_000).length
    expect(Number(r!.n)).toBeGreaterThanOrEqual(ttlKept)
  })
})
