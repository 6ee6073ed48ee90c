/**
 * The dashboard's reads, all SELECTs on the analysts' tables (a read-only login is enough). Each
 * builder returns `{ query, query_params }`: outside input (an alert ID from the URL, a team)
 * only ever travels as a query parameter. `now` is a parameter too, so a test can pin it.
 */
import type { ClickHouseClient } from '@clickhouse/client'
import { AlertRecord } from '../../schemas/alert.ts'
import type { DeploymentTableRow } from '../../schemas/deployment.ts'

export interface Query {
  query: string
  query_params: Record<string, unknown>
}

const sqlTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')

async function rows<T>(client: ClickHouseClient, q: Query): Promise<T[]> {
  return (await client.query({ ...q, format: 'JSONEachRow' })).json<T>()
}

// ---------------------------------------------------------------------------------------------
// spend now

/** Spend in the last hour (the burn rate), month to date, and the daily totals of the last 14 full days. */
export function spendNowQuery(now: number): Query {
  return {
    query: `SELECT
    toFloat64(sumIf(cost_usd, window_start >= {now:DateTime('UTC')} - INTERVAL 1 HOUR)) AS last_hour_usd,
    toFloat64(sumIf(cost_usd, window_start >= toStartOfMonth({now:DateTime('UTC')}))) AS month_to_date_usd,
    toFloat64(sumIf(cost_usd, window_start >= {now:DateTime('UTC')} - INTERVAL 1 DAY)) AS last_day_usd,
    min(window_start) AS first_window
FROM cost_windows
WHERE window_start >= least(toStartOfMonth({now:DateTime('UTC')}), {now:DateTime('UTC')} - INTERVAL 1 DAY) AND window_start <= {now:DateTime('UTC')}`,
    query_params: { now: sqlTime(now) },
  }
}

export function dailyTotalsQuery(now: number, days = 14): Query {
  return {
    query: `SELECT day, toFloat64(sum(cost_usd)) AS usd
FROM cost_daily
WHERE day >= toDate({now:DateTime('UTC')}) - {days:UInt32} AND day < toDate({now:DateTime('UTC')})
GROUP BY day ORDER BY day`,
    query_params: { now: sqlTime(now), days },
  }
}

export interface SpendNow {
  burnUsdPerHour: number
  monthToDateUsd: number
  projected: { usd: number; low: number; high: number; basis: string }
}

/**
 * Month-end projection: month to date plus the remaining days at the mean daily spend of the last
 * full days, with an 80% range from their day-to-day spread (independent days); with fewer than 3
 * full days of history, at the pace of the last 24 h with a ±25% range, and it says so.
 */
export function projectMonthEnd(now: number, monthToDate: number, lastDay: number, daily: readonly number[]): SpendNow['projected'] {
  const d = new Date(now)
  const monthEnd = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1)
  const remainingDays = Math.max(0, (monthEnd - now) / 86_400_000)
  if (daily.length >= 3) {
    const mean = daily.reduce((s, v) => s + v, 0) / daily.length
    const sd = Math.sqrt(daily.reduce((s, v) => s + (v - mean) ** 2, 0) / (daily.length - 1))
    const usd = monthToDate + remainingDays * mean
    const spread = 1.2816 * sd * Math.sqrt(remainingDays)
    return { usd, low: Math.max(monthToDate, usd - spread), high: usd + spread, basis: `mean of the last ${daily.length} full days; 80% range from their day-to-day spread` }
  }
  const usd = monthToDate + remainingDays * lastDay
  return { usd, low: monthToDate + remainingDays * lastDay * 0.75, high: monthToDate + remainingDays * lastDay * 1.25, basis: 'pace of the last 24 h (under 3 full days of history); range ±25%' }
}

export async function loadSpendNow(client: ClickHouseClient, now: number): Promise<SpendNow> {
  const [s] = await rows<{ last_hour_usd: number; month_to_date_usd: number; last_day_usd: number }>(client, spendNowQuery(now))
  const daily = (await rows<{ usd: number }>(client, dailyTotalsQuery(now))).map((r) => Number(r.usd))
  const mtd = Number(s?.month_to_date_usd ?? 0)
  return { burnUsdPerHour: Number(s?.last_hour_usd ?? 0), monthToDateUsd: mtd, projected: projectMonthEnd(now, mtd, Number(s?.last_day_usd ?? 0), daily) }
}

// ---------------------------------------------------------------------------------------------
// teams, endpoints, models, environments: this week against the week before

export type Breakdown = 'team' | 'environment' | 'endpoint' | 'model'

export interface BreakdownRow {
  team: string
  environment: string
  endpoint: string
  model: string
  this_week_usd: number
  last_week_usd: number
  requests: number
}

const GROUPS: Record<Breakdown, string> = { team: 'team', environment: 'team, environment', endpoint: 'team, endpoint', model: 'model' }
const COLUMNS: Record<Breakdown, string> = {
  team: "team, '' AS environment, '' AS endpoint, '' AS model",
  environment: "team, environment, '' AS endpoint, '' AS model",
  endpoint: "team, '' AS environment, endpoint, '' AS model",
  model: "'' AS team, '' AS environment, '' AS endpoint, model",
}

/** Spend per team, environment, endpoint or model (all environments summed, except by environment) from cost_hourly_env. */
export function breakdownQuery(by: Breakdown, now: number, limit = 15): Query {
  const cols = COLUMNS[by]
  return {
    query: `SELECT ${cols},
    toFloat64(sumIf(cost_usd, hour >= {now:DateTime('UTC')} - INTERVAL 7 DAY)) AS this_week_usd,
    toFloat64(sumIf(cost_usd, hour < {now:DateTime('UTC')} - INTERVAL 7 DAY)) AS last_week_usd,
    sumIf(requests, hour >= {now:DateTime('UTC')} - INTERVAL 7 DAY) AS requests
FROM cost_hourly_env
WHERE hour >= {now:DateTime('UTC')} - INTERVAL 14 DAY AND hour <= {now:DateTime('UTC')}
GROUP BY ${GROUPS[by]}
ORDER BY this_week_usd DESC
LIMIT {limit:UInt32}`,
    query_params: { now: sqlTime(now), limit },
  }
}

export async function loadBreakdown(client: ClickHouseClient, by: Breakdown, now: number): Promise<BreakdownRow[]> {
  return (await rows<BreakdownRow>(client, breakdownQuery(by, now))).map((r) => ({ ...r, this_week_usd: Number(r.this_week_usd), last_week_usd: Number(r.last_week_usd), requests: Number(r.requests) }))
}

// ---------------------------------------------------------------------------------------------
// budgets

export function teamMonthQuery(now: number, teams: string[]): Query {
  return {
    query: `SELECT team,
    toFloat64(sumIf(cost_usd, window_start >= toStartOfMonth({now:DateTime('UTC')}))) AS month_to_date_usd,
    toFloat64(sumIf(cost_usd, window_start >= {now:DateTime('UTC')} - INTERVAL 1 DAY)) AS last_day_usd
FROM cost_windows
WHERE team IN {teams:Array(String)} AND window_start >= least(toStartOfMonth({now:DateTime('UTC')}), {now:DateTime('UTC')} - INTERVAL 1 DAY) AND window_start <= {now:DateTime('UTC')}
GROUP BY team`,
    query_params: { now: sqlTime(now), teams },
  }
}

export async function loadTeamMonth(client: ClickHouseClient, now: number, teams: string[]): Promise<Map<string, { monthToDateUsd: number; lastDayUsd: number }>> {
  if (!teams.length) return new Map()
  const r = await rows<{ team: string; month_to_date_usd: number; last_day_usd: number }>(client, teamMonthQuery(now, teams))
  return new Map(r.map((x) => [x.team, { monthToDateUsd: Number(x.month_to_date_usd), lastDayUsd: Number(x.last_day_usd) }]))
}

// ---------------------------------------------------------------------------------------------
// alerts

/** Every state change of an alert: the alerts table keeps one row per (alert_id, status), ordered. */
export function alertQuery(alertId: string): Query {
  return {
    query: `SELECT alert_id, status, team, endpoint, model, signal, direction, baseline, current, change_pct,
    formatDateTime(started_at, '%Y-%m-%dT%H:%i:%S.000Z', 'UTC') AS started_at,
    formatDateTime(detected_at, '%Y-%m-%dT%H:%i:%S.000Z', 'UTC') AS detected_at,
    deployment_ids, drivers, severity, monthly_impact_usd, environment AS alert_environment, canary AS canary_json
FROM alerts FINAL
WHERE alert_id = {alert_id:String}
ORDER BY detected_at, indexOf(['firing', 'updated', 'resolved'], status)`,
    query_params: { alert_id: alertId },
  }
}

/** The latest state of the most recent alerts. */
export function timelineQuery(limit = 50): Query {
  // aliases differ from the column names: ClickHouse resolves an alias before a column
  return {
    query: `SELECT alert_id,
    argMax(status, (detected_at, indexOf(['firing', 'updated', 'resolved'], status))) AS last_status,
    any(team) AS team, any(endpoint) AS endpoint, any(model) AS model, any(signal) AS signal, any(direction) AS direction,
    argMax(change_pct, detected_at) AS last_change_pct, argMax(severity, detected_at) AS last_severity,
    formatDateTime(min(started_at), '%Y-%m-%dT%H:%i:%S.000Z', 'UTC') AS first_started,
    max(detected_at) AS last_detected,
    formatDateTime(last_detected, '%Y-%m-%dT%H:%i:%S.000Z', 'UTC') AS last_detected_iso,
    argMax(deployment_ids, detected_at) AS last_deployment_ids,
    argMax(monthly_impact_usd, detected_at) AS last_impact,
    any(environment) AS alert_environment
FROM alerts FINAL
GROUP BY alert_id
ORDER BY last_detected DESC, alert_id
LIMIT {limit:UInt32}`,
    query_params: { limit },
  }
}

export type TimelineRow = Pick<AlertRecord, 'alert_id' | 'status' | 'team' | 'endpoint' | 'model' | 'signal' | 'direction' | 'change_pct' | 'severity' | 'started_at' | 'detected_at' | 'deployment_ids' | 'monthly_impact_usd' | 'environment'>

export async function loadTimeline(client: ClickHouseClient): Promise<TimelineRow[]> {
  const r = await rows<Record<string, unknown>>(client, timelineQuery())
  return r.map((x) => ({
    alert_id: String(x.alert_id),
    status: x.last_status as TimelineRow['status'],
    team: String(x.team),
    endpoint: (x.endpoint as string | null) ?? null,
    model: (x.model as string | null) ?? null,
    signal: x.signal as TimelineRow['signal'],
    direction: x.direction as TimelineRow['direction'],
    change_pct: Number(x.last_change_pct),
    severity: x.last_severity as TimelineRow['severity'],
    started_at: String(x.first_started),
    detected_at: String(x.last_detected_iso),
    deployment_ids: (x.last_deployment_ids as string[]) ?? [],
    monthly_impact_usd: Number(x.last_impact),
    ...(typeof x.alert_environment === 'string' && x.alert_environment !== 'production' ? { environment: x.alert_environment } : {}),
  }))
}

/** The alert's state changes, parsed as alert records (a row that does not parse is left out). */
export async function loadAlert(client: ClickHouseClient, alertId: string): Promise<AlertRecord[]> {
  const out: AlertRecord[] = []
  for (const r of await rows<Record<string, unknown>>(client, alertQuery(alertId))) {
    let drivers: unknown
    try {
      drivers = JSON.parse(String(r.drivers))
    } catch {
      continue
    }
    const { alert_environment, canary_json, ...rest } = r
    const environment = typeof alert_environment === 'string' && alert_environment !== 'production' ? { environment: alert_environment } : {}
    let canary: unknown
    try {
      canary = typeof canary_json === 'string' && canary_json !== '' ? JSON.parse(canary_json) : undefined
    } catch {
      canary = undefined
    }
    const parsed = AlertRecord.safeParse({ ...rest, ...environment, ...(canary !== undefined ? { canary } : {}), drivers, baseline: Number(r.baseline), current: Number(r.current), change_pct: Number(r.change_pct), monthly_impact_usd: Number(r.monthly_impact_usd) })
    if (parsed.success) out.push(parsed.data)
  }
  return out
}

export type DeploymentRow = DeploymentTableRow

export function deploymentsQuery(ids: string[]): Query {
  return {
    query: `SELECT deployment_id, team, service, formatDateTime(timestamp, '%Y-%m-%d %H:%i:%S', 'UTC') AS timestamp, endpoint, version, commit, url
FROM deployments FINAL
WHERE deployment_id IN {ids:Array(String)}
ORDER BY timestamp`,
    query_params: { ids },
  }
}

export async function loadDeploymentMarkers(client: ClickHouseClient, ids: string[]): Promise<DeploymentRow[]> {
  return ids.length ? rows<DeploymentRow>(client, deploymentsQuery(ids)) : []
}

export interface DeliveryView {
  status: string
  channel_name: string
  outcome: string
  delivered_at: string
  error: string
}

export function deliveriesQuery(alertId: string): Query {
  return {
    query: `SELECT status, channel_name, outcome, formatDateTime(delivered_at, '%Y-%m-%d %H:%i:%S', 'UTC') AS delivered_at, error
FROM alert_deliveries FINAL
WHERE alert_id = {alert_id:String} AND outcome != 'sending'
ORDER BY delivered_at`,
    query_params: { alert_id: alertId },
  }
}

export async function loadDeliveries(client: ClickHouseClient, alertId: string): Promise<DeliveryView[]> {
  return rows<DeliveryView>(client, deliveriesQuery(alertId))
}
