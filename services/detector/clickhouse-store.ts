/**
 * The detector's ClickHouse adapter: records alert state changes in `alerts`, and reads the
 * history it rebuilds its baselines from after a restart (cost_windows_env, deployments, alerts).
 */
import type { ClickHouseClient } from '@clickhouse/client'
import { wrapClickHouseError } from '../../shared/clickhouse/client.ts'
import type { AlertRecord } from '../../schemas/alert.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import type { DeploymentMarker } from '../../schemas/deployment.ts'

/** minutes per slice of the rebuild's history (below ENDPOINT_MAX_SKEW_WINDOWS: see streamWindowsSince) */
export const REBUILD_CHUNK_WINDOWS = 8

const iso = (s: string) => new Date(Date.parse(s.includes('T') ? s : s.replace(' ', 'T') + 'Z')).toISOString()

export function createClickHouseAlertStore(client: ClickHouseClient) {
  return {
    async insertAlerts(alerts: AlertRecord[]): Promise<void> {
      if (!alerts.length) return
      try {
        await client.insert({
          table: 'alerts',
          format: 'JSONEachRow',
          // canary details as JSON ('' when the canary comparison did not page it; migration 042)
          values: alerts.map((a) => ({ ...a, drivers: JSON.stringify(a.drivers), canary: a.canary ? JSON.stringify(a.canary) : '' })),
        })
      } catch (err) {
        throw wrapClickHouseError(err, 'insert into alerts failed')
      }
    },

    /** (alert_id, status) pairs already recorded since a time. */
    async knownAlerts(sinceMs: number): Promise<Set<string>> {
      const rs = await client.query({
        query: `SELECT DISTINCT alert_id, status FROM alerts WHERE detected_at >= fromUnixTimestamp64Milli({since:Int64})`,
        query_params: { since: Math.floor(sinceMs) },
        format: 'JSONEachRow',
      })
      const rows = await rs.json<{ alert_id: string; status: string }>()
      return new Set(rows.map((r) => `${r.alert_id}/${r.status}`))
    },

    /**
     * Closed windows of [since, until), as the aggregator would have published them; streamed, so a
     * rebuild never holds 26 h of history in memory at once. In time slices of REBUILD_CHUNK_WINDOWS,
     * endpoint by endpoint within a slice (each endpoint's windows in time order): a cold endpoint's
     * state is read back once per slice rather than once per minute, and no series runs ahead of
     * another by more than the core's skew bounds allow (ENDPOINT_MAX_SKEW_WINDOWS), so the
     * alerts are those of time order.
     */
    async *streamWindowsSince(sinceMs: number, untilMs: number, windowMs: number): AsyncGenerator<WindowRecord> {
      const seconds = Math.max(60, Math.round(windowMs / 1000))
      const rs = await client.query({
        query: `SELECT team, environment, endpoint, model, toStartOfInterval(window_start, toIntervalSecond({seconds:UInt32})) AS ws,
                       sum(requests) AS requests, sum(errors) AS errors, sum(retries) AS retries, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
                       sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens,
                       toFloat64(sum(cost_usd)) AS cost_usd, sum(cost_sq_sum) AS cost_sq_sum, sum(unpriced_requests) AS unpriced_requests,
                       sumMap(deployments) AS deployments,
                       sum(cost_input_usd) AS cost_input_usd, sum(cost_cache_read_usd) AS cost_cache_read_usd,
                       sum(cost_cache_write_usd) AS cost_cache_write_usd, sum(cost_output_usd) AS cost_output_usd
                FROM cost_windows_env
                WHERE window_start >= fromUnixTimestamp64Milli({since:Int64}) AND window_start < fromUnixTimestamp64Milli({until:Int64})
                GROUP BY team, environment, endpoint, model, ws
                ORDER BY intDiv(toUnixTimestamp(ws), {chunk:UInt32}), team, environment, endpoint, ws, model`,
        query_params: { since: Math.floor(sinceMs), until: Math.floor(untilMs), seconds, chunk: seconds * REBUILD_CHUNK_WINDOWS },
        format: 'JSONEachRow',
      })
      const toWindow = (r: Record<string, unknown>): WindowRecord => {
        const start = Date.parse(String(r.ws).replace(' ', 'T') + 'Z')
        return {
          team: String(r.team),
          endpoint: String(r.endpoint),
          model: String(r.model),
          // per environment (migration 041): staging history never rebuilds a production baseline
          ...(r.environment !== 'production' ? { environment: String(r.environment) } : {}),
          window_start: new Date(start).toISOString(),
          window_end: new Date(start + windowMs).toISOString(),
          requests: Number(r.requests),
          errors: Number(r.errors),
          // retries (migration 043; 0 in rows stored before it)
          retries: Number(r.retries ?? 0),
          input_tokens: Number(r.input_tokens),
          output_tokens: Number(r.output_tokens),
          cache_read_tokens: Number(r.cache_read_tokens),
          cache_write_tokens: Number(r.cache_write_tokens),
          cost_usd: Number(r.cost_usd),
          cost_sq_sum: Number(r.cost_sq_sum),
          unpriced_requests: Number(r.unpriced_requests),
          late_events: 0,
          deployments: Object.fromEntries(Object.entries((r.deployments ?? {}) as Record<string, number>).map(([k, v]) => [k, Number(v)])),
          // cost by token component (migration 042; 0 in rows stored before it, and the detector
          // then sees parts that do not add up to cost_usd and prices drivers at catalog rates)
          cost_input_usd: Number(r.cost_input_usd ?? 0),
          cost_cache_read_usd: Number(r.cost_cache_read_usd ?? 0),
          cost_cache_write_usd: Number(r.cost_cache_write_usd ?? 0),
          cost_output_usd: Number(r.cost_output_usd ?? 0),
        }
      }
      for await (const rows of rs.stream<Record<string, unknown>>()) for (const row of rows) yield toWindow(row.json())
    },

    async deploymentsSince(sinceMs: number): Promise<DeploymentMarker[]> {
      const rs = await client.query({
        query: `SELECT deployment_id, team, service, timestamp, endpoint, version, commit, url FROM deployments FINAL WHERE timestamp >= fromUnixTimestamp64Milli({since:Int64}) ORDER BY timestamp`,
        query_params: { since: Math.floor(sinceMs) },
        format: 'JSONEachRow',
      })
      const rows = await rs.json<Record<string, string | null>>()
      return rows.map((r) => {
        const m: DeploymentMarker = { deployment_id: r.deployment_id!, team: r.team!, service: r.service!, timestamp: iso(r.timestamp!) }
        if (r.endpoint) m.endpoint = r.endpoint
        if (r.version) m.version = r.version
        if (r.commit) m.commit = r.commit
        if (r.url) m.url = r.url
        return m
      })
    },
  }
}

export type ClickHouseAlertStore = ReturnType<typeof createClickHouseAlertStore>
