import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { openTestClickHouse } from '../support/clickhouse.ts'
import { migrate } from '../../shared/clickhouse/migrate.ts'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'

let h: ClickHouseHandle

beforeAll(async () => {
  h = await openTestClickHouse(inject('clickhouse'), { migrate: false })
})
afterAll(async () => {
  await h?.close()
})

const schemaOf = async () => {
  const rs = await h.client.query({
    query: `SELECT table, name, type FROM system.columns WHERE database = currentDatabase() AND table != 'schema_migrations' ORDER BY table, position`,
    format: 'JSONEachRow',
  })
  return rs.json<{ table: string; name: string; type: string }>()
}

describe('ClickHouse engine', () => {
  it('answers version() through @clickhouse/client', async () => {
    const rs = await h.client.query({ query: 'SELECT version() AS v', format: 'JSONEachRow' })
    const [r] = await rs.json<{ v: string }>()
    console.log(`[clickhouse] engine ${h.kind}, version() = ${r?.v}`)
    expect(r?.v).toMatch(/^\d+\.\d+/)
  })

  it('applies the migrations, and applying them again changes nothing', async () => {
    const first = await migrate(h.client)
    expect(first.applied.length).toBeGreaterThanOrEqual(4)
    const after1 = await schemaOf()
    const tables = new Set(after1.map((c) => c.table))
    for (const t of ['usage_events', 'cost_windows', 'cost_hourly', 'cost_daily', 'deployments', 'alerts', 'alert_deliveries']) expect(tables, t).toContain(t)
    await migrate(h.client)
    expect(await schemaOf()).toEqual(after1)
  })

  it('inserts and queries with parameters, and the materialized views aggregate exactly', async () => {
    const base = { provider: 'openai', service: 's', input_tokens: 100, output_tokens: 10, cache_read_tokens: 0, cache_write_tokens: 0, batch: false, cost_source: 'reported', unpriced: false, gpu_seconds: 0, latency_ms: 5, attributes: {}, late: false, kafka_topic: 'x', kafka_partition: 0 }
    const rows = [
      { ...base, event_id: 'a', timestamp: '2026-11-22T10:00:01.000Z', team: "o'brien", endpoint: 'POST /x', model: 'm', deployment_id: 'd1', cost_usd: '0.000000150000', status: 'ok', kafka_offset: 1 },
      { ...base, event_id: 'b', timestamp: '2026-11-22T10:00:59.999Z', team: "o'brien", endpoint: 'POST /x', model: 'm', deployment_id: 'd2', cost_usd: '0.100000000001', status: 'error', kafka_offset: 2 },
      { ...base, event_id: 'c', timestamp: '2026-11-22T10:01:00.000Z', team: "o'brien", endpoint: 'POST /x', model: 'm', deployment_id: 'd2', cost_usd: '1.000000000000', status: 'ok', kafka_offset: 3 },
    ]
    await h.client.insert({ table: 'usage_events', values: rows, format: 'JSONEachRow' })
    const rs = await h.client.query({
      query: `SELECT window_start, sum(requests) AS requests, sum(errors) AS errors, toString(sum(cost_usd)) AS cost, sumMap(deployments) AS deployments
              FROM cost_windows WHERE team = {team:String} GROUP BY window_start ORDER BY window_start`,
      query_params: { team: "o'brien" },
      format: 'JSONEachRow',
    })
    const w = await rs.json<{ window_start: string; requests: number; errors: number; cost: string; deployments: Record<string, number> }>()
    expect(w).toEqual([
      { window_start: '2026-11-22 10:00:00', requests: 2, errors: 1, cost: '0.100000150001', deployments: { d1: 1, d2: 1 } },
      { window_start: '2026-11-22 10:01:00', requests: 1, errors: 0, cost: '1', deployments: { d2: 1 } },
    ])
    const off = await (await h.client.query({ query: 'SELECT max(max_offset) AS o FROM usage_offsets WHERE kafka_topic = {t:String}', query_params: { t: 'x' }, format: 'JSONEachRow' })).json<{ o: number }>()
    expect(Number(off[0]?.o)).toBe(3)
  })
})

describe('series_rolling view', () => {
  it('gives cost per request and burn rate over 5 min and 1 h, and month-to-date spend', async () => {
    await migrate(h.client)
    const now = Date.now()
    const base = { provider: '', service: '', deployment_id: '', input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, batch: false, cost_source: 'reported', unpriced: false, gpu_seconds: 0, latency_ms: 0, attributes: {}, late: false, kafka_topic: 'roll', kafka_partition: 0, status: 'ok' }
    const row = (i: number, agoMs: number, cost: string) => ({ ...base, event_id: `r${i}`, timestamp: new Date(now - agoMs).toISOString(), team: 'roll', endpoint: 'e', model: 'm', cost_usd: cost, kafka_offset: i })
    // 2 requests at $1 two minutes ago, 2 requests at $3 thirty minutes ago
    await h.client.insert({ table: 'usage_events', format: 'JSONEachRow', values: [row(1, 120_000, '1'), row(2, 120_000, '1'), row(3, 1_800_000, '3'), row(4, 1_800_000, '3')] })
    const rs = await h.client.query({ query: `SELECT * FROM series_rolling WHERE team = {team:String}`, query_params: { team: 'roll' }, format: 'JSONEachRow' })
    const [r] = await rs.json<Record<string, number>>()
    expect(Number(r!.requests_5m)).toBe(2)
    expect(r!.cost_per_request_5m).toBeCloseTo(1, 9)
    expect(r!.burn_usd_per_hour_5m).toBeCloseTo(24, 9)
    expect(Number(r!.requests_1h)).toBe(4)
    expect(r!.cost_per_request_1h).toBeCloseTo(2, 9)
    expect(r!.burn_usd_per_hour_1h).toBeCloseTo(8, 9)
    const startOfMonth = new Date(now)
    const inMonth = new Date(now - 1_800_000).getUTCMonth() === startOfMonth.getUTCMonth() ? 8 : 2
    expect(r!.month_to_date_usd).toBeCloseTo(inMonth, 9)
    expect(r!.projected_month_usd).toBeGreaterThanOrEqual(r!.month_to_date_usd!)
  })
})
