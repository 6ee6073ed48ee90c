/** What drills read from and write to any ClickHouse client (chDB or a server): totals, windows. */
import type { ClickHouseClient } from '@clickhouse/client'
import type { WindowRecord } from '../../schemas/window.ts'

export interface RawTotals {
  rows: number
  ids: number
  input: number
  output: number
  windowRequests: number
  hourlyRequests: number
  dailyRequests: number
  idList: string[]
}

export async function queryTotals(client: ClickHouseClient): Promise<RawTotals> {
  const one = async <T>(query: string) => (await (await client.query({ query, format: 'JSONEachRow' })).json<T>())[0]
  const t = await one<{ rows: number; ids: number; input: number; output: number }>('SELECT count() AS rows, uniqExact(event_id) AS ids, sum(input_tokens) AS input, sum(output_tokens) AS output FROM usage_events')
  const requests = async (table: string) => Number((await one<{ r: number }>(`SELECT sum(requests) AS r FROM ${table}`))?.r ?? 0)
  const idRs = await client.query({ query: 'SELECT DISTINCT event_id FROM usage_events', format: 'JSONEachRow' })
  const idList = (await idRs.json<{ event_id: string }>()).map((r) => r.event_id)
  return {
    rows: Number(t?.rows ?? 0),
    ids: Number(t?.ids ?? 0),
    input: Number(t?.input ?? 0),
    output: Number(t?.output ?? 0),
    windowRequests: await requests('cost_windows'),
    hourlyRequests: await requests('cost_hourly'),
    dailyRequests: await requests('cost_daily'),
    idList,
  }
}

/** What the aggregator's materialized view writes to cost_windows in a shared ClickHouse. */
export async function insertWindows(client: ClickHouseClient, windows: readonly WindowRecord[]): Promise<void> {
  if (!windows.length) return
  // to cost_windows and to cost_windows_env (environment in the key), which the detector rebuilds from (migration 041)
  for (const table of ['cost_windows', 'cost_windows_env'] as const) {
    await client.insert({
      table,
      format: 'JSONEachRow',
      // a direct insert, not a retry: never dropped by the table's deduplication window (migration 007)
      clickhouse_settings: { insert_deduplicate: 0 },
      values: windows.map((w) => ({
        team: w.team,
        ...(table === 'cost_windows_env' ? { environment: w.environment ?? 'production' } : {}),
        endpoint: w.endpoint,
        model: w.model,
        window_start: w.window_start,
        requests: w.requests,
        errors: w.errors,
        input_tokens: w.input_tokens,
        output_tokens: w.output_tokens,
        cache_read_tokens: w.cache_read_tokens,
        cache_write_tokens: w.cache_write_tokens,
        cost_usd: w.cost_usd.toFixed(12),
        cost_sq_sum: w.cost_sq_sum,
        unpriced_requests: w.unpriced_requests,
        late_events: w.late_events,
        deployments: w.deployments,
      })),
    })
  }
}
