/**
 * A crash inside an INSERT on chDB can commit usage_events without the materialized views'
 * blocks; reconcileRollups repairs the rollups exactly, and running it again changes nothing.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { openTestClickHouse } from '../support/clickhouse.ts'
import { migrate } from '../../shared/clickhouse/migrate.ts'
import { reconcileRollups } from '../../services/aggregator/reconcile.ts'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'

let h: ClickHouseHandle
beforeAll(async () => {
  h = await openTestClickHouse(inject('clickhouse'))
})
afterAll(async () => {
  await h?.close()
})

const rows = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    event_id: `r${from + i}`,
    timestamp: new Date(Date.now() - 600_000 + (from + i) * 1000).toISOString(),
    team: 't',
    endpoint: `e${(from + i) % 2}`,
    model: 'm',
    provider: '',
    service: '',
    deployment_id: `d${(from + i) % 3}`,
    input_tokens: 100 + i,
    output_tokens: 10,
    cache_read_tokens: 5,
    cache_write_tokens: 1,
    batch: false,
    cost_usd: ((from + i) / 1e6).toFixed(12),
    cost_source: 'reported',
    unpriced: (from + i) % 5 === 0,
    gpu_seconds: 0,
    latency_ms: 0,
    status: (from + i) % 4 === 0 ? 'error' : 'ok',
    attributes: {},
    late: (from + i) % 7 === 0,
    environment: (from + i) % 3 === 0 ? 'staging' : 'production',
    kafka_topic: 'rec',
    kafka_partition: 0,
    kafka_offset: from + i,
  }))

const fromRaw = async () =>
  (await h.client.query({
    query: `SELECT endpoint, toDateTime(toStartOfMinute(timestamp), 'UTC') AS w, count() AS requests, countIf(status = 'error') AS errors, sum(input_tokens) AS input, toString(sum(cost_usd)) AS cost, countIf(late) AS late, sumMap(map(deployment_id, toUInt64(1))) AS deployments FROM usage_events GROUP BY endpoint, w ORDER BY endpoint, w`,
    format: 'JSONEachRow',
  })).json()
const fromWindows = async () =>
  (await h.client.query({
    query: `SELECT endpoint, window_start AS w, sum(requests) AS requests, sum(errors) AS errors, sum(input_tokens) AS input, toString(sum(cost_usd)) AS cost, sum(late_events) AS late, sumMap(deployments) AS deployments FROM cost_windows GROUP BY endpoint, w ORDER BY endpoint, w`,
    format: 'JSONEachRow',
  })).json()
const daily = async (table: 'usage_events' | 'cost_daily' | 'cost_windows_env' | 'cost_hourly_env') =>
  (await h.client.query({ query: table === 'usage_events' ? 'SELECT count() AS r, toString(sum(cost_usd)) AS c FROM usage_events' : `SELECT sum(requests) AS r, toString(sum(cost_usd)) AS c FROM ${table}`, format: 'JSONEachRow' })).json()

describe('reconcileRollups', () => {
  it('repairs rollups left short by an interrupted INSERT, exactly and idempotently', async () => {
    await h.client.insert({ table: 'usage_events', format: 'JSONEachRow', values: rows(0, 200) })
    // the crash: a block lands in usage_events without its materialized views
    for (const v of ['cost_windows_mv', 'cost_hourly_mv', 'cost_daily_mv', 'cost_windows_env_mv', 'cost_hourly_env_mv']) await h.client.command({ query: `DROP VIEW ${v}` })
    await h.client.insert({ table: 'usage_events', format: 'JSONEachRow', values: rows(200, 150) })
    await migrate(h.client) // the views come back
    await h.client.insert({ table: 'usage_events', format: 'JSONEachRow', values: rows(350, 50) })
    expect(await fromWindows()).not.toEqual(await fromRaw())

    const repaired = await reconcileRollups(h.client)
    expect(repaired.cost_windows).toBeGreaterThan(0)
    expect(await fromWindows()).toEqual(await fromRaw())
    expect(await daily('cost_daily')).toEqual(await daily('usage_events'))
    expect(repaired.cost_windows_env).toBeGreaterThan(0)
    expect(await daily('cost_windows_env')).toEqual(await daily('usage_events'))
    expect(await daily('cost_hourly_env')).toEqual(await daily('usage_events'))

    expect(await reconcileRollups(h.client)).toEqual({ cost_windows: 0, cost_hourly: 0, cost_daily: 0, cost_windows_env: 0, cost_hourly_env: 0 })
    expect(await fromWindows()).toEqual(await fromRaw())
  })
})
