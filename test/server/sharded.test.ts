/**
 * The sharded layout on two local servers (a cluster of two shards in their remote_servers):
 * `burnwatch migrate` with CLICKHOUSE_CLUSTER applies it, the analyst fixture goes in through the Distributed tables, and the
 * totals, the rollups and every documented analyst query answer exactly as on one server.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import { freePorts, startLocalClickHouse, type LocalClickHouse } from '../../infra/clickhouse/local-server.ts'
import { openTestClickHouse } from '../support/clickhouse.ts'
import { runCli } from '../support/pipeline.ts'
import { DAY, TOPIC, addMonths, buildAnalystFixture, chDate, chDateTime } from '../support/analyst-fixtures.ts'
import { docQueries } from '../../shared/clickhouse/doc-queries.ts'
import { SHARDED_CLIENT_SETTINGS, shardDatabase } from '../../shared/clickhouse/sharded.ts'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'

const queries = docQueries(readFileSync(new URL('../../docs/clickhouse.md', import.meta.url), 'utf8'))
const fx = buildAnalystFixture()
const { T } = fx
/** a value for each documented query parameter, by name (the ranges cover the fixture) */
const PARAMS: Record<string, string | number> = {
  now: chDateTime(T),
  as_of: chDateTime(T),
  until: chDateTime(T),
  since: chDateTime(T - 14 * DAY),
  from: chDate(addMonths(T, -1)),
  to: chDate(addMonths(T, 1)),
  deployment_id: 'search-d2',
  hours: 72,
  limit: 10,
  team: 'search',
  topic: TOPIC,
}
const CLUSTER = 'burnwatch_test'
const database = `sharded_${randomBytes(4).toString('hex')}`

const servers: LocalClickHouse[] = []
let single: ClickHouseHandle
let sharded: ClickHouseClient
const clients: ClickHouseClient[] = []

async function load(c: ClickHouseClient) {
  const rows = fx.events.map((e) => e.row)
  for (let i = 0; i < rows.length; i += 64) await c.insert({ table: 'usage_events', values: rows.slice(i, i + 64), format: 'JSONEachRow' })
  for (const batch of fx.deployments) await c.insert({ table: 'deployments', values: batch, format: 'JSONEachRow' })
  for (const batch of fx.alerts) await c.insert({ table: 'alerts', values: batch, format: 'JSONEachRow' })
}

const rowsOf = async (c: ClickHouseClient, query: string, params: Record<string, string | number> = {}) =>
  (await (await c.query({ query, query_params: params, format: 'JSONEachRow' })).json<Record<string, unknown>>()).map((r) => JSON.stringify(norm(r)))

const norm = (v: unknown): unknown => {
  if (typeof v === 'number') return Number(v.toPrecision(12))
  if (Array.isArray(v)) return v.map(norm)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]))
  return v
}

beforeAll(async () => {
  const tcp = await freePorts(2)
  for (const port of tcp) servers.push(await startLocalClickHouse({ tcpPort: port, clusters: { [CLUSTER]: tcp } }))
  // `burnwatch migrate` with the cluster configured applies the layout on every shard
  const env = { CLICKHOUSE_URL: servers[0]!.url, CLICKHOUSE_CLUSTER: CLUSTER, CLICKHOUSE_SHARD_URLS: servers.map((s) => s.url).join(','), CLICKHOUSE_DATABASE: database, BURNWATCH_DATA_DIR: mkdtempSync(join(tmpdir(), 'bw-sharded-')) }
  const r = await runCli(['migrate'], env)
  expect(r.code, r.text).toBe(0)
  expect(r.text).toContain(`applied the sharded layout`)
  expect((await runCli(['migrate'], env)).code, 'idempotent').toBe(0)
  sharded = createClient({ url: servers[0]!.url, database, log: { level: ClickHouseLogLevel.OFF }, clickhouse_settings: SHARDED_CLIENT_SETTINGS })
  single = await openTestClickHouse(inject('clickhouse'))
  await Promise.all([load(sharded), load(single.client)])
})

afterAll(async () => {
  await Promise.allSettled([sharded?.close(), single?.close(), ...clients.map((c) => c.close())])
  for (const s of servers) await s.stop()
})

describe('sharded layout: two shards behind Distributed tables', () => {
  it('has a Distributed table for every table of the migrations (a new migration needs its line in distributed.sql)', async () => {
    const tables = "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE {engine:String} AND engine NOT LIKE '%View' AND name != 'schema_migrations' ORDER BY name"
    const shardTables = await rowsOf(sharded, tables, { db: shardDatabase(database), engine: '%' })
    expect(shardTables.length).toBeGreaterThan(5)
    expect(await rowsOf(sharded, tables, { db: database, engine: 'Distributed' })).toEqual(shardTables)
  })

  it('spreads the series over both shards and keeps totals and rollups exact', async () => {
    for (const s of servers) {
      const c = createClient({ url: s.url, database: shardDatabase(database), log: { level: ClickHouseLogLevel.OFF } })
      clients.push(c)
      const [r] = await rowsOf(c, 'SELECT count() AS n FROM usage_events')
      expect(JSON.parse(r!).n, `events on shard ${s.url}`).toBeGreaterThan(0)
    }
    const totals = `SELECT (SELECT count() FROM usage_events) AS raw, (SELECT sum(requests) FROM cost_windows) AS windows,
      (SELECT sum(requests) FROM cost_hourly) AS hourly, (SELECT sum(requests) FROM cost_daily) AS daily,
      (SELECT toString(sum(cost_usd)) FROM cost_daily) AS cost, (SELECT count() FROM series_rolling) AS rolling_series`
    const [a] = await rowsOf(sharded, totals)
    expect(a).toEqual((await rowsOf(single.client, totals))[0])
    expect(JSON.parse(a!).raw).toBe(fx.events.length)
  })

  for (const q of queries) {
    it(`answers "${q.title}" as one server does`, async () => {
      const params = Object.fromEntries(q.params.map((p) => [p, PARAMS[p]]))
      for (const p of q.params) expect(PARAMS[p], `a value for parameter ${p}`).toBeDefined()
      const one = await rowsOf(single.client, q.sql, params as Record<string, string | number>)
      expect(one.length, 'a non-empty answer').toBeGreaterThan(0)
      const many = await rowsOf(sharded, q.sql, params as Record<string, string | number>)
      // the same rows; the order too where the query orders completely
      expect([...many].sort()).toEqual([...one].sort())
    })
  }
})
