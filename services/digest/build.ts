/**
 * The weekly digest of a team, from ClickHouse: spend of the week and the week before (per
 * environment, model and endpoint, from `cost_hourly_env`), budget variance and a month-end
 * forecast with a range per environment that has a budget or spend, and the week's alerts with
 * how they ended (`alerts`, `alert_deliveries`). Every value from outside is a query parameter.
 */
import type { ClickHouseClient } from '@clickhouse/client'
import { environmentBudget, type ConfigFile } from '../../shared/config.ts'
import { querySpend, sumCost, toPico, fromPico, type SpendRow } from '../report/query.ts'
import { previousWeek, type Week } from './week.ts'

export interface Ranked {
  name: string
  /** USD, exact decimal text */
  cost: string
  previous: string
  /** week-over-week change in %, null when there was no spend the week before */
  changePct: number | null
  requests: number
}

export interface EnvironmentForecast {
  environment: string
  monthToDate: string
  budget: number | null
  /** month-to-date minus the budget's pro-rata share of the elapsed month; null without a budget */
  variance: number | null
  forecast: number
  forecastLow: number
  forecastHigh: number
}

export interface DigestAlert {
  alert_id: string
  signal: string
  endpoint: string | null
  model: string | null
  environment: string
  change_pct: number
  started_at: string
  /** resolved | still firing | silenced */
  outcome: string
  resolved_at: string | null
}

export interface Digest {
  team: string
  week: Week
  total: string
  previousTotal: string
  changePct: number | null
  requests: number
  environments: Ranked[]
  models: Ranked[]
  endpoints: Ranked[]
  month: string
  forecasts: EnvironmentForecast[]
  alerts: DigestAlert[]
}

const TOP = 5
const pct = (now: bigint, before: bigint): number | null => (before > 0n ? Math.round((Number(now - before) / Number(before)) * 1000) / 10 : null)

function rank(rows: SpendRow[], previous: SpendRow[], key: (r: SpendRow) => string, top = TOP): Ranked[] {
  const acc = new Map<string, { cost: bigint; previous: bigint; requests: number }>()
  const get = (k: string) => acc.get(k) ?? (acc.set(k, { cost: 0n, previous: 0n, requests: 0 }).get(k)!)
  for (const r of rows) {
    const a = get(key(r))
    a.cost += toPico(r.cost_usd)
    a.requests += r.requests
  }
  for (const r of previous) get(key(r)).previous += toPico(r.cost_usd)
  return [...acc]
    .filter(([, a]) => a.cost > 0n || a.requests > 0)
    .sort((x, y) => (y[1].cost > x[1].cost ? 1 : y[1].cost < x[1].cost ? -1 : x[0] < y[0] ? -1 : 1))
    .slice(0, top)
    .map(([name, a]) => ({ name, cost: fromPico(a.cost), previous: fromPico(a.previous), changePct: pct(a.cost, a.previous), requests: a.requests }))
}

/** Daily spend per environment in the UTC month up to `untilMs`. */
async function dailySpend(client: ClickHouseClient, team: string, monthStart: number, untilMs: number): Promise<Map<string, Map<string, number>>> {
  const rs = await client.query({
    query: `SELECT environment, toString(toDate(hour)) AS day, toFloat64(sum(cost_usd)) AS cost FROM cost_hourly_env
            WHERE team = {team:String} AND hour >= fromUnixTimestamp64Milli({from:Int64}) AND hour < fromUnixTimestamp64Milli({to:Int64})
            GROUP BY environment, day`,
    query_params: { team, from: monthStart, to: untilMs },
    format: 'JSONEachRow',
  })
  const out = new Map<string, Map<string, number>>()
  for (const r of await rs.json<{ environment: string; day: string; cost: number }>()) {
    const m = out.get(r.environment) ?? new Map<string, number>()
    out.set(r.environment, m.set(r.day, Number(r.cost)))
  }
  return out
}

/**
 * Month-end forecast: month-to-date plus the mean daily spend over the remaining days, with an
 * 80% range from the day-to-day spread (±1.28 σ √days remaining).
 */
export function forecastMonth(daily: number[], elapsedDays: number, daysInMonth: number, monthToDate: number): { forecast: number; low: number; high: number } {
  const remaining = Math.max(0, daysInMonth - elapsedDays)
  const days = Math.max(1, elapsedDays)
  // days without spend count as zero
  const values = [...daily, ...Array.from({ length: Math.max(0, Math.ceil(days) - daily.length) }, () => 0)]
  const mean = monthToDate / days
  const variance = values.length > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (values.length - 1) : mean ** 2
  const spread = 1.28 * Math.sqrt(variance) * Math.sqrt(remaining)
  const forecast = monthToDate + mean * remaining
  return { forecast, low: Math.max(monthToDate, forecast - spread), high: forecast + spread }
}

async function weekAlerts(client: ClickHouseClient, team: string, week: Week): Promise<DigestAlert[]> {
  const rs = await client.query({
    query: `SELECT alert_id, any(signal) AS signal, any(endpoint) AS endpoint, any(model) AS model,
                   argMaxIf(change_pct, detected_at, status != 'resolved') AS last_change, toString(min(started_at)) AS started,
                   countIf(status = 'resolved') > 0 AS resolved, toString(maxIf(detected_at, status = 'resolved')) AS resolved_time,
                   alert_id IN (SELECT alert_id FROM alert_deliveries FINAL WHERE team = {team:String} AND outcome = 'silenced') AS silenced
            FROM alerts FINAL
            WHERE team = {team:String} AND alert_id IN (
              SELECT alert_id FROM alerts WHERE team = {team:String} AND detected_at >= fromUnixTimestamp64Milli({from:Int64}) AND detected_at < fromUnixTimestamp64Milli({to:Int64}))
            GROUP BY alert_id ORDER BY min(started_at), min(detected_at), alert_id`,
    query_params: { team, from: week.from, to: week.to },
    format: 'JSONEachRow',
  })
  const rows = await rs.json<{ alert_id: string; signal: string; endpoint: string | null; model: string | null; last_change: number; started: string; resolved: number | boolean; resolved_time: string; silenced: number | boolean }>()
  return rows.map((r) => ({
    alert_id: r.alert_id,
    signal: r.signal,
    endpoint: r.endpoint,
    model: r.model,
    environment: environmentOfAlert(r.alert_id),
    change_pct: Number(r.last_change),
    started_at: r.started,
    outcome: r.resolved ? 'resolved' : r.silenced ? 'silenced' : 'still firing',
    resolved_at: r.resolved ? r.resolved_time : null,
  }))
}

/** Alerts of a non-production environment carry it in their id (`…@staging`, see detector/environments.ts). */
export function environmentOfAlert(alertId: string): string {
  const at = alertId.lastIndexOf('@')
  return at >= 0 ? alertId.slice(at + 1) : 'production'
}

export async function buildDigest(client: ClickHouseClient, file: ConfigFile, team: string, week: Week): Promise<Digest> {
  const prev = previousWeek(week)
  const [rows, previous] = await Promise.all([querySpend(client, { from: week.from, to: week.to, team }), querySpend(client, { from: prev.from, to: prev.to, team })])
  const total = sumCost(rows)
  const previousTotal = sumCost(previous)

  // the UTC month of the week's last instant, up to the week's end
  const last = new Date(week.to - 1)
  const monthStart = Date.UTC(last.getUTCFullYear(), last.getUTCMonth(), 1)
  const monthEnd = Date.UTC(last.getUTCFullYear(), last.getUTCMonth() + 1, 1)
  const daysInMonth = (monthEnd - monthStart) / 86_400_000
  const elapsedDays = (week.to - monthStart) / 86_400_000
  const daily = await dailySpend(client, team, monthStart, week.to)
  const environments = new Set<string>([...daily.keys()])
  for (const t of file.teams.filter((x) => x.name === team)) {
    if (t.monthly_budget_usd !== undefined) environments.add('production')
    for (const e of Object.keys(t.environment_budgets_usd ?? {})) environments.add(e)
  }
  const forecasts: EnvironmentForecast[] = [...environments].sort().map((environment) => {
    const days = [...(daily.get(environment)?.values() ?? [])]
    const mtd = days.reduce((s, v) => s + v, 0)
    const f = forecastMonth(days, elapsedDays, daysInMonth, mtd)
    const budget = environmentBudget(file, team, environment)
    return {
      environment,
      monthToDate: mtd.toFixed(2),
      budget,
      variance: budget === null ? null : mtd - (budget * elapsedDays) / daysInMonth,
      forecast: f.forecast,
      forecastLow: f.low,
      forecastHigh: f.high,
    }
  })

  return {
    team,
    week,
    total: fromPico(total),
    previousTotal: fromPico(previousTotal),
    changePct: pct(total, previousTotal),
    requests: rows.reduce((s, r) => s + r.requests, 0),
    environments: rank(rows, previous, (r) => r.environment, 100),
    models: rank(rows, previous, (r) => r.model),
    endpoints: rank(rows, previous, (r) => r.endpoint),
    month: new Date(monthStart).toISOString().slice(0, 7),
    forecasts,
    alerts: await weekAlerts(client, team, week),
  }
}
