/**
 * Runs every example query of docs/clickhouse.md (parsed with docQueries, so the doc and this
 * test cannot drift) on a fresh database filled with the fixture of
 * test/support/analyst-fixtures.ts, and checks each answer against the numbers the fixture
 * definition implies. Also checks the analyst role: on chDB that it is honestly reported as
 * unsupported; on a ClickHouse server that an analyst can SELECT and cannot INSERT or DROP.
 */
import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { ClickHouseLogLevel, createClient } from '@clickhouse/client'
import { openTestClickHouse } from '../support/clickhouse.ts'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { docQueries } from '../../shared/clickhouse/doc-queries.ts'
import { ANALYST_ROLE, analystRoleStatements, ensureAnalystRole } from '../../shared/clickhouse/roles.ts'
import {
  DAY,
  HOUR,
  TOPIC,
  addMonths,
  buildAnalystFixture,
  chDate,
  chDateTime,
  chDateTime64,
  inRange,
  monthStart,
  totals,
  totalsBy,
  type AlertRow,
  type DeploymentRow,
  type FixtureEvent,
} from '../support/analyst-fixtures.ts'

const DOC = readFileSync(new URL('../../docs/clickhouse.md', import.meta.url), 'utf8')
const queries = docQueries(DOC)
const fx = buildAnalystFixture()
const { T, D, events: E } = fx

type Row = Record<string, unknown>
type Params = Record<string, string | number>

const usd = (micros: number): number => micros / 1e6
const round2 = (x: number): number => Math.round(x * 100) / 100
/** numbers rounded to 9 decimals, recursively: Decimal(38,12) divisions truncate at 12 digits */
const norm = (v: unknown): unknown => {
  if (typeof v === 'number') return Math.round(v * 1e9) / 1e9
  if (Array.isArray(v)) return v.map(norm)
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]))
  return v
}
const byDesc = <R>(key: (r: R) => number, ...then: ((r: R) => string)[]) => (a: R, b: R): number => {
  const d = key(b) - key(a)
  if (d !== 0) return d
  for (const t of then) {
    const c = t(a) < t(b) ? -1 : t(a) > t(b) ? 1 : 0
    if (c !== 0) return c
  }
  return 0
}
const markers = new Map<string, DeploymentRow>(fx.deployments.flat().map((d) => [d.deployment_id, d]))
const alertStates = new Map<string, AlertRow>(fx.alerts.flat().map((a) => [`${a.alert_id}/${a.status}`, a]))
const week = inRange(T - 7 * DAY, T)
const twoWeeks = inRange(T - 14 * DAY, T)

/** One expectation per documented query title: the parameters and the answer implied by the fixture. */
const cases: Record<string, { params: Params; expected: () => Row[] }> = {
  'Cost per request by model over the last 7 days': {
    params: { now: chDateTime(T) },
    expected: () =>
      [...totalsBy(E, (e) => e.batch.model, week)]
        .map(([model, t]) => ({ model, requests: t.requests, cost_usd: usd(t.costMicros), cost_per_request_usd: usd(t.costMicros) / t.requests }))
        .sort(byDesc((r) => r.cost_usd, (r) => r.model)),
  },

  'Endpoints with the largest week-over-week burn-rate growth': {
    params: { now: chDateTime(T), limit: 10 },
    expected: () => {
      const key = (e: FixtureEvent) => `${e.batch.team}\u0000${e.batch.endpoint}`
      const last = totalsBy(E, key, inRange(T - 14 * DAY, T - 7 * DAY))
      const cur = totalsBy(E, key, week)
      return [...last]
        .filter(([, t]) => t.costMicros > 0)
        .map(([k, t]) => {
          const [team = '', endpoint = ''] = k.split('\u0000')
          const thisMicros = cur.get(k)?.costMicros ?? 0
          return { team, endpoint, last_week_usd_per_hour: usd(t.costMicros) / 168, this_week_usd_per_hour: usd(thisMicros) / 168, growth_pct: round2((100 * (thisMicros - t.costMicros)) / t.costMicros) }
        })
        .sort(byDesc((r) => r.growth_pct, (r) => r.team, (r) => r.endpoint))
    },
  },

  'Spend per team and environment': {
    params: { from: chDate(addMonths(T, -1)), to: chDate(addMonths(T, 1)) },
    expected: () =>
      [...totalsBy(E, (e) => e.batch.team, (e) => e.ts >= addMonths(T, -1) && e.ts < addMonths(T, 1))]
        .map(([team, t]) => ({ team, environment: 'production', requests: t.requests, cost_usd: usd(t.costMicros) }))
        .sort((a, b) => (a.team < b.team ? -1 : 1)),
  },
  'Monthly showback per team': {
    params: { from: chDate(addMonths(T, -1)), to: chDate(addMonths(T, 1)) },
    expected: () => {
      const key = (e: FixtureEvent) => `${chDate(monthStart(e.ts))}\u0000${e.batch.team}`
      const groups = totalsBy(E, key, (e) => e.ts >= addMonths(T, -1) && e.ts < addMonths(T, 1))
      const monthTotal = new Map<string, number>()
      for (const [k, t] of groups) {
        const m = k.split('\u0000')[0] ?? ''
        monthTotal.set(m, (monthTotal.get(m) ?? 0) + t.costMicros)
      }
      return [...groups]
        .map(([k, t]) => {
          const [month = '', team = ''] = k.split('\u0000')
          return { month, team, requests: t.requests, cost_usd: usd(t.costMicros), share_pct: round2((100 * t.costMicros) / (monthTotal.get(month) ?? 1)) }
        })
        .sort((a, b) => (a.month < b.month ? -1 : a.month > b.month ? 1 : byDesc<typeof a>((r) => r.cost_usd, (r) => r.team)(a, b)))
    },
  },

  'Unpriced models': {
    params: { since: chDateTime(T - 14 * DAY), until: chDateTime(T) },
    expected: () => {
      const models = [...new Set(E.filter((e) => twoWeeks(e) && e.batch.unpriced).map((e) => `${e.batch.model}\u0000${e.batch.provider}`))]
      return models.map((k) => {
        const [model = '', provider = ''] = k.split('\u0000')
        const es = E.filter((e) => twoWeeks(e) && e.batch.model === model && e.batch.provider === provider)
        return {
          model,
          provider,
          teams: [...new Set(es.map((e) => e.batch.team))],
          requests: es.length,
          unpriced_requests: es.filter((e) => e.batch.unpriced).length,
          input_tokens: es.reduce((s, e) => s + e.batch.input_tokens, 0),
          output_tokens: es.reduce((s, e) => s + e.batch.output_tokens, 0),
          unpriced_cost_usd: usd(es.filter((e) => e.batch.unpriced).reduce((s, e) => s + e.costMicros, 0)),
          first_seen: chDateTime64(Math.min(...es.map((e) => e.ts))),
          last_seen: chDateTime64(Math.max(...es.map((e) => e.ts))),
        }
      })
    },
  },

  'Cost per request before and after a deployment': {
    params: { deployment_id: 'search-d2', hours: 72 },
    expected: () => {
      const m = markers.get('search-d2')
      expect(m?.timestamp).toBe(chDateTime64(D))
      const mine = (e: FixtureEvent) => e.batch.team === 'search' && e.batch.endpoint === m?.endpoint
      const period = (from: number, to: number) => {
        const es = E.filter((e) => mine(e) && e.ts >= from && e.ts < to)
        const t = totals(es)
        const byDep: Record<string, number> = {}
        for (const e of es) byDep[e.batch.deployment_id] = (byDep[e.batch.deployment_id] ?? 0) + 1
        return { requests: t.requests, cost_usd: usd(t.costMicros), cost_per_request_usd: usd(t.costMicros) / t.requests, requests_by_deployment: byDep }
      }
      const rows = [{ period: 'before', ...period(D - 72 * HOUR, D) }, { period: 'after', ...period(D, D + 72 * HOUR) }]
      // the fixture's story in closed form: 100 calls at $0.001 on d1, then 100 at $0.002 on d2
      expect(rows.map((r) => [r.requests, r.cost_per_request_usd])).toEqual([
        [100, 0.001],
        [100, 0.002],
      ])
      return rows
    },
  },

  'Burn rate per team over the last 24 hours': {
    params: { now: chDateTime(T) },
    expected: () =>
      [...totalsBy(E, (e) => e.batch.team, inRange(T - DAY, T))]
        .map(([team, t]) => {
          const hours = totalsBy(E, (e) => String(Math.floor(e.ts / HOUR)), (e) => e.batch.team === team && e.ts >= T - DAY && e.ts < T)
          return { team, cost_usd: usd(t.costMicros), usd_per_hour: usd(t.costMicros) / 24, peak_hour_usd: usd(Math.max(...[...hours.values()].map((h) => h.costMicros))) }
        })
        .sort(byDesc((r) => r.usd_per_hour, (r) => r.team)),
  },

  'Projected month-to-date spend per team': {
    params: { as_of: chDateTime(T) },
    expected: () => {
      const start = monthStart(T)
      const monthSeconds = (addMonths(T, 1) - start) / 1000
      const elapsedSeconds = (T - start) / 1000
      return [...totalsBy(E, (e) => e.batch.team, inRange(start, T))]
        .map(([team, t]) => ({ team, month_to_date_usd: usd(t.costMicros), projected_month_usd: (usd(t.costMicros) * monthSeconds) / elapsedSeconds }))
        .sort(byDesc((r) => r.projected_month_usd, (r) => r.team))
    },
  },

  'Top deployments by spend': {
    params: { since: chDateTime(T - 7 * DAY), until: chDateTime(T), limit: 10 },
    expected: () =>
      [...totalsBy(E, (e) => `${e.batch.deployment_id}\u0000${e.batch.team}`, (e) => week(e) && e.batch.deployment_id !== '')]
        .map(([k, t]) => {
          const [deployment_id = '', team = ''] = k.split('\u0000')
          const m = markers.get(deployment_id)
          const known = m && m.team === team
          return {
            deployment_id,
            team,
            requests: t.requests,
            cost_usd: usd(t.costMicros),
            cost_per_request_usd: usd(t.costMicros) / t.requests,
            service: known ? m.service : null,
            version: known ? m.version : null,
            deployed_at: known ? m.timestamp : null,
          }
        })
        .sort(byDesc((r) => r.cost_usd, (r) => r.deployment_id))
        .slice(0, 10),
  },

  'Cache read share by model': {
    params: { since: chDateTime(T - 7 * DAY), until: chDateTime(T) },
    expected: () =>
      [...totalsBy(E, (e) => e.batch.model, week)]
        .map(([model, t]) => ({ model, input_tokens: t.input, cache_read_tokens: t.cacheRead, cache_read_pct: round2((100 * t.cacheRead) / t.input) }))
        .sort(byDesc((r) => r.cache_read_pct, (r) => r.model)),
  },

  'Cost by token component per series': {
    params: { since: chDateTime(T - 7 * DAY), until: chDateTime(T) },
    expected: () =>
      [...totalsBy(E, (e) => `${e.batch.team}\u0000${e.batch.endpoint}\u0000${e.batch.model}`, week)]
        .map(([k, t]) => {
          const [team = '', endpoint = '', model = ''] = k.split('\u0000')
          const r6 = (x: number): number => Math.round(x * 1e6) / 1e6
          // the fixture splits every call's cost 40% input, 60% output
          return { team, endpoint, model, requests: t.requests, input_usd: r6(usd(t.costMicros) * 0.4), cache_read_usd: 0, cache_write_usd: 0, output_usd: r6(usd(t.costMicros) * 0.6), split_pct: t.costMicros > 0 ? 100 : null }
        })
        .sort((a, b) => (a.team < b.team ? -1 : a.team > b.team ? 1 : a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : a.model < b.model ? -1 : a.model > b.model ? 1 : 0)),
  },

  'Error share by endpoint': {
    params: { since: chDateTime(T - 7 * DAY), until: chDateTime(T) },
    expected: () =>
      [...totalsBy(E, (e) => `${e.batch.team}\u0000${e.batch.endpoint}`, week)]
        .map(([k, t]) => {
          const [team = '', endpoint = ''] = k.split('\u0000')
          const errorMicros = E.filter((e) => week(e) && e.error && e.batch.team === team && e.batch.endpoint === endpoint).reduce((s, e) => s + e.costMicros, 0)
          return { team, endpoint, requests: t.requests, errors: t.errors, error_pct: round2((100 * t.errors) / t.requests), error_cost_usd: usd(errorMicros) }
        })
        .sort(byDesc((r) => r.error_pct, (r) => r.team, (r) => r.endpoint)),
  },

  'Alerts fired in the last 7 days with their deployments': {
    params: { now: chDateTime(T) },
    expected: () =>
      [...alertStates.values()]
        .filter((a) => a.status === 'firing' && a.detected_at >= chDateTime64(T - 7 * DAY) && a.detected_at < chDateTime64(T))
        .sort((a, b) => (a.detected_at < b.detected_at ? 1 : -1))
        .map((a) => {
          const states = [...alertStates.values()].filter((s) => s.alert_id === a.alert_id).sort((x, y) => (x.detected_at < y.detected_at ? 1 : -1))
          const top = a.deployment_ids[0] === undefined ? undefined : markers.get(a.deployment_ids[0])
          const m = top && top.team === a.team ? top : null
          return {
            alert_id: a.alert_id,
            team: a.team,
            endpoint: a.endpoint,
            model: a.model,
            signal: a.signal,
            change_pct: a.change_pct,
            started_at: a.started_at,
            detected_at: a.detected_at,
            current_status: states[0]?.status,
            deployment_ids: a.deployment_ids,
            top_deployment_id: m ? m.deployment_id : null,
            top_deployment_service: m ? m.service : null,
            top_deployment_version: m ? m.version : null,
            top_deployment_at: m ? m.timestamp : null,
          }
        }),
  },

  'Late events per team': {
    params: { since: chDateTime(T - 14 * DAY), until: chDateTime(T) },
    expected: () =>
      [...totalsBy(E, (e) => e.batch.team, twoWeeks)]
        .map(([team, t]) => ({ team, requests: t.requests, late_events: t.late, late_pct: round2((100 * t.late) / t.requests) }))
        .sort(byDesc((r) => r.late_events, (r) => r.team)),
  },

  "Requests per deployment for a team's series": {
    params: { team: 'search', since: chDateTime(T - 14 * DAY), until: chDateTime(T) },
    expected: () =>
      [...totalsBy(E, (e) => `${e.batch.endpoint}\u0000${e.batch.model}`, (e) => twoWeeks(e) && e.batch.team === 'search')].map(([k, t]) => {
        const [endpoint = '', model = ''] = k.split('\u0000')
        const byDep: Record<string, number> = {}
        for (const e of E) if (twoWeeks(e) && e.batch.team === 'search' && e.batch.endpoint === endpoint && e.batch.model === model && e.batch.deployment_id) byDep[e.batch.deployment_id] = (byDep[e.batch.deployment_id] ?? 0) + 1
        return { endpoint, model, requests: t.requests, requests_by_deployment: byDep }
      }),
  },

  'Kafka checkpoint per partition': {
    params: { topic: TOPIC },
    expected: () =>
      [...new Set(E.map((e) => e.row.kafka_partition))].sort().map((p) => {
        const es = E.filter((e) => e.row.kafka_partition === p)
        return {
          kafka_partition: p,
          // offsets are assigned 0..n-1 per partition in the fixture: the checkpoint is n-1
          checkpoint_offset: es.length - 1,
          first_offset: 0,
          stored_rows: es.length,
          latest_event: chDateTime64(Math.max(...es.map((e) => e.ts))),
        }
      }),
  },
}

let h: ClickHouseHandle

beforeAll(async () => {
  // the local server's read-only login reads one database: the fixture goes there
  const analyst = inject('clickhouse').analyst
  h = await openTestClickHouse(inject('clickhouse'), analyst ? { database: analyst.database } : {})
  // many small inserts, as the aggregator does: every rollup key gets several partial rows
  const rows = E.map((e) => e.row)
  for (let i = 0; i < rows.length; i += 64) await h.client.insert({ table: 'usage_events', values: rows.slice(i, i + 64), format: 'JSONEachRow' })
  for (const batch of fx.deployments) await h.client.insert({ table: 'deployments', values: batch, format: 'JSONEachRow' })
  for (const batch of fx.alerts) await h.client.insert({ table: 'alerts', values: batch, format: 'JSONEachRow' })
})

afterAll(async () => {
  await h?.close()
})

describe('docs/clickhouse.md example queries', () => {
  it('documents at least ten queries, each with an expectation and its parameters', () => {
    expect(queries.length, 'example queries in docs/clickhouse.md').toBeGreaterThanOrEqual(10)
    const titles = queries.map((q) => q.title)
    expect(new Set(titles).size, 'query titles are unique').toBe(titles.length)
    for (const q of queries) {
      expect(cases[q.title], `no expectation for the documented query "${q.title}"`).toBeDefined()
      expect(Object.keys(cases[q.title]?.params ?? {}).sort(), `parameters of "${q.title}"`).toEqual([...q.params].sort())
    }
    for (const title of Object.keys(cases)) expect(titles, `expectation without a documented query`).toContain(title)
  })

  it('the fixture is loaded exactly (the rollups equal the raw events)', async () => {
    const rs = await h.client.query({
      query: `SELECT (SELECT count() FROM usage_events) AS raw, (SELECT sum(requests) FROM cost_hourly) AS hourly, (SELECT sum(requests) FROM cost_daily) AS daily, (SELECT sum(requests) FROM cost_windows) AS windows, (SELECT toString(sum(cost_usd)) FROM cost_daily) AS cost`,
      format: 'JSONEachRow',
    })
    const [r] = await rs.json<{ raw: number; hourly: number; daily: number; windows: number; cost: string }>()
    const t = totals(E)
    expect(r).toEqual({ raw: t.requests, hourly: t.requests, daily: t.requests, windows: t.requests, cost: String(usd(t.costMicros)) })
  })

  for (const q of queries) {
    it(q.title, async () => {
      const c = cases[q.title]
      if (!c) throw new Error(`no expectation for the documented query "${q.title}"`)
      const rs = await h.client.query({ query: q.sql, query_params: c.params, format: 'JSONEachRow' })
      const rows = await rs.json<Row>()
      const expected = c.expected()
      expect(expected.length, 'the fixture gives this query a non-empty answer').toBeGreaterThan(0)
      expect(norm(rows)).toEqual(norm(expected))
    })
  }
})

describe('docQueries', () => {
  it('takes the first sql block under each ### heading, with its parameters, and nothing else', () => {
    const md = [
      '## Role',
      '```sql',
      'GRANT SELECT ON db.* TO r;',
      '```',
      '### A',
      'text',
      '```sql',
      "SELECT {x:String}, {t:DateTime('UTC')}, {x:String};",
      '```',
      '```sql',
      'SELECT 2',
      '```',
      '### B (no query)',
      '```ts',
      'const x = 1',
      '```',
      '### C',
      '~~~sql',
      'SELECT 3',
      '~~~',
    ].join('\n')
    expect(docQueries(md)).toEqual([
      { title: 'A', sql: "SELECT {x:String}, {t:DateTime('UTC')}, {x:String}", params: ['x', 't'], paramTypes: { x: 'String', t: "DateTime('UTC')" } },
      { title: 'C', sql: 'SELECT 3', params: [], paramTypes: {} },
    ])
  })
})

describe('analyst role', () => {
  it('docs/clickhouse.md shows the statements ensureAnalystRole runs', () => {
    for (const s of analystRoleStatements('burnwatch')) expect(DOC).toContain(`${s};`)
  })

  /** An analyst login can SELECT and cannot INSERT, DROP or read files on the server. */
  const expectReadOnly = async (url: string, user: string, password: string) => {
    const analyst = createClient({ url, username: user, password, database: h.database, log: { level: ClickHouseLogLevel.OFF } })
    try {
      const rs = await analyst.query({ query: 'SELECT count() AS n FROM usage_events', format: 'JSONEachRow' })
      const [r] = await rs.json<{ n: number | string }>()
      expect(Number(r?.n)).toBe(E.length)
      await expect(analyst.insert({ table: 'deployments', values: [{ deployment_id: 'x', team: 't', service: 's', timestamp: chDateTime64(T) }], format: 'JSONEachRow' })).rejects.toMatchObject({ code: '497' })
      await expect(analyst.command({ query: 'DROP TABLE alerts' })).rejects.toMatchObject({ code: '497' })
      await expect(analyst.query({ query: "SELECT * FROM file('/etc/passwd', 'LineAsString')" })).rejects.toMatchObject({ code: '497' })
    } finally {
      await analyst.close()
    }
  }

  it('is reported unsupported on chDB (which refuses CREATE ROLE), and on a server can SELECT but not INSERT or DROP', async () => {
    const target = inject('clickhouse')
    const result = await ensureAnalystRole(h)
    if (target.url === null) {
      expect(h.kind).toBe('chdb')
      expect(result.status).toBe('unsupported')
      // the documented reason is true: chDB rejects access control statements
      await expect(h.client.command({ query: `CREATE ROLE IF NOT EXISTS ${ANALYST_ROLE}` })).rejects.toMatchObject({ code: '497' })
      return
    }
    if (target.analyst) {
      // the local server (clickhouse-local's LocalServer) keeps users only in its config file: its
      // default user may not manage access (497), and with access management it has no writable
      // access storage (514, ACCESS_STORAGE_FOR_INSERTION_NOT_FOUND); the login is declared instead
      expect(result).toMatchObject({ status: 'forbidden' })
      await expect(h.client.command({ query: `CREATE ROLE IF NOT EXISTS ${ANALYST_ROLE}` })).rejects.toMatchObject({ code: '497' })
      await expectReadOnly(target.url, target.analyst.user, target.analyst.password)
      return
    }
    expect(result, 'the test ClickHouse user needs access management (CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1)').toMatchObject({ status: 'applied' })
    const user = `bw_analyst_${randomBytes(4).toString('hex')}`
    const password = randomBytes(12).toString('hex')
    // user and password are generated hex: safe to inline (DDL takes no query parameters)
    await h.client.command({ query: `CREATE USER IF NOT EXISTS ${user} IDENTIFIED WITH sha256_password BY '${password}' DEFAULT DATABASE ${h.database}` })
    await h.client.command({ query: `GRANT ${ANALYST_ROLE} TO ${user}` })
    try {
      await expectReadOnly(target.url, user, password)
    } finally {
      await h.client.command({ query: `DROP USER IF EXISTS ${user}` })
    }
  })
})
