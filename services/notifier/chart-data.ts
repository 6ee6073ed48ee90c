/**
 * The data of an alert's chart, read from ClickHouse: the series' buckets around the break (from
 * `cost_windows_env`, in the alert's environment only) and the deployments near it (markers from
 * `deployments`, and the alert's deployment IDs where they first appear in the series' traffic). Shared by the notifier (the
 * chart in the page's thread) and the dashboard (the alert's page). Every value from an alert
 * goes in as a query parameter.
 */
import type { ClickHouseClient } from '@clickhouse/client'
import type { AlertRecord } from '../../schemas/alert.ts'
import type { ChartDeployment, ChartInput, ChartPoint } from './chart.ts'

type ChartAlert = ChartInput['alert'] & Pick<AlertRecord, 'deployment_ids' | 'environment'>

const BUCKETS = [1, 2, 5, 10, 15, 30, 60, 120, 240, 720, 1440]
/** about this many buckets on a chart */
const TARGET_POINTS = 120

/** The time span charted: the baseline before the change point (at least 3 h, or 3 × the break so far) and the break up to `until`. */
export function chartSpan(a: Pick<AlertRecord, 'started_at' | 'detected_at'>, until?: number): { from: number; to: number; bucketMinutes: number } {
  const started = Date.parse(a.started_at)
  const to = Math.max(until ?? Date.parse(a.detected_at), started + 60_000)
  const from = started - Math.max(3 * 3_600_000, 3 * (to - started))
  const minutes = (to - from) / 60_000
  const bucketMinutes = BUCKETS.find((b) => minutes / b <= TARGET_POINTS) ?? 1440
  return { from: Math.floor(from / (bucketMinutes * 60_000)) * bucketMinutes * 60_000, to, bucketMinutes }
}

/** The parameters of the alert's series in the queries' fixed WHERE clause; a null endpoint or model means all. */
function seriesParams(a: Pick<AlertRecord, 'team' | 'endpoint' | 'model' | 'environment'>): Record<string, unknown> {
  return { team: a.team, environment: a.environment ?? 'production', any_endpoint: a.endpoint === null, endpoint: a.endpoint ?? '', any_model: a.model === null, model: a.model ?? '' }
}

const sqlTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')

/** The query of the series' buckets (exported for its test). */
export function bucketsQuery(a: Pick<AlertRecord, 'team' | 'endpoint' | 'model' | 'environment'>, span: { from: number; to: number; bucketMinutes: number }) {
  return {
    query: `SELECT toUnixTimestamp(toStartOfInterval(window_start, toIntervalMinute({bucket:UInt32}))) * 1000 AS t,
       sum(requests) AS requests, toFloat64(sum(cost_usd)) AS cost
FROM cost_windows_env
WHERE team = {team:String} AND environment = {environment:String} AND ({any_endpoint:Bool} OR endpoint = {endpoint:String}) AND ({any_model:Bool} OR model = {model:String})
  AND window_start >= {from:DateTime('UTC')} AND window_start < {to:DateTime('UTC')}
GROUP BY t ORDER BY t`,
    query_params: { ...seriesParams(a), bucket: span.bucketMinutes, from: sqlTime(span.from), to: sqlTime(span.to + span.bucketMinutes * 60_000) },
  }
}

/** Everything the chart needs; `until` (ms) extends the span past detection (the dashboard shows up to now). */
export async function loadChartInput(client: ClickHouseClient, alert: ChartAlert, opts: { until?: number } = {}): Promise<ChartInput> {
  const span = chartSpan(alert, opts.until)
  const rows = await (await client.query({ ...bucketsQuery(alert, span), format: 'JSONEachRow' })).json<{ t: number | string; requests: number | string; cost: number }>()
  const perHour = 60 / span.bucketMinutes
  const points: ChartPoint[] = rows
    .map((r) => {
      const requests = Number(r.requests)
      const value = alert.signal === 'cost_per_request' ? (requests > 0 ? r.cost / requests : NaN) : r.cost * perHour
      return { t: Number(r.t), requests, value }
    })
    .filter((p) => Number.isFinite(p.value))
  // no windows (yet): no chart, so no need to look for deployments
  return { alert, points, deployments: points.length ? await loadDeployments(client, alert, span) : [], bucketMinutes: span.bucketMinutes }
}

async function loadDeployments(client: ClickHouseClient, a: ChartAlert, span: { from: number; to: number }): Promise<ChartDeployment[]> {
  const range = { from: sqlTime(span.from), to: sqlTime(span.to) }
  const markers = await (
    await client.query({
      query: `SELECT deployment_id, toUnixTimestamp64Milli(max(timestamp)) AS at
FROM deployments
WHERE team = {team:String} AND (endpoint IS NULL OR {any_endpoint:Bool} OR endpoint = {endpoint:String})
  AND timestamp >= {from:DateTime64(3, 'UTC')} AND timestamp <= {to:DateTime64(3, 'UTC')}
GROUP BY deployment_id ORDER BY at LIMIT 20`,
      query_params: { team: a.team, any_endpoint: a.endpoint === null, endpoint: a.endpoint ?? '', ...range },
      format: 'JSONEachRow',
    })
  ).json<{ deployment_id: string; at: number | string }>()
  const out = new Map<string, ChartDeployment>(markers.map((m) => [m.deployment_id, { deployment_id: m.deployment_id, at: Number(m.at), source: 'marker' as const }]))
  const missing = a.deployment_ids.filter((id) => !out.has(id)).slice(0, 5)
  if (missing.length) {
    const seen = await (
      await client.query({
        query: `SELECT dep AS deployment_id, toUnixTimestamp(min(window_start)) * 1000 AS at
FROM cost_windows_env ARRAY JOIN mapKeys(deployments) AS dep
WHERE team = {team:String} AND environment = {environment:String} AND ({any_endpoint:Bool} OR endpoint = {endpoint:String}) AND ({any_model:Bool} OR model = {model:String})
  AND dep IN {ids:Array(String)} AND window_start >= {from:DateTime('UTC')} AND window_start <= {to:DateTime('UTC')}
GROUP BY dep`,
        query_params: { ...seriesParams(a), ids: missing, ...range },
        format: 'JSONEachRow',
      })
    ).json<{ deployment_id: string; at: number | string }>()
    // first seen at the left edge means "already there before the chart": not a marker
    for (const s of seen) if (Number(s.at) > span.from) out.set(s.deployment_id, { deployment_id: s.deployment_id, at: Number(s.at), source: 'traffic' })
  }
  // the alert's own candidates first (most likely first), then other markers by time
  const rank = (d: ChartDeployment) => {
    const i = a.deployment_ids.indexOf(d.deployment_id)
    return i < 0 ? 100 : i
  }
  return [...out.values()].sort((x, y) => rank(x) - rank(y) || x.at - y.at)
}
