/**
 * Repairs the rollups after a crash inside an INSERT on chDB. A process killed while chDB writes
 * an INSERT into usage_events can leave the table's block committed without the blocks its
 * materialized views derive from it (cost_windows, cost_hourly, cost_daily, usage_offsets): the
 * raw data is exact, the rollups are short. (A ClickHouse server finishes an INSERT whose client
 * died, so this is chDB's failure mode.) Every rollup column is a sum (or max), so the missing part
 * of a key is exactly "recomputed from usage_events − stored in the rollup"; this inserts that
 * difference for the keys of recently ingested rows whose rollup is short, and nothing otherwise,
 * so running it twice changes nothing. Run it before consuming, while no INSERT is in flight.
 */
import type { ClickHouseClient } from '@clickhouse/client'

interface Rollup {
  table: string
  /** the key columns besides the time bucket, the same in usage_events (default team, endpoint, model) */
  dims?: string[]
  /** key column of the rollup and its expression over usage_events */
  key: [string, string]
  /** rollup column → aggregate over usage_events */
  columns: Record<string, string>
}

const common = {
  requests: 'count()',
  errors: "countIf(status = 'error')",
  input_tokens: 'sum(input_tokens)',
  output_tokens: 'sum(output_tokens)',
  cache_read_tokens: 'sum(cache_read_tokens)',
  cost_usd: 'sum(usage_events.cost_usd)',
  unpriced_requests: 'countIf(unpriced)',
}

/** cost_usd by token component (migration 042) */
const components = {
  cost_input_usd: 'sum(usage_events.cost_input_usd)',
  cost_cache_read_usd: 'sum(usage_events.cost_cache_read_usd)',
  cost_cache_write_usd: 'sum(usage_events.cost_cache_write_usd)',
  cost_output_usd: 'sum(usage_events.cost_output_usd)',
  /** calls that were retries (migration 043) */
  retries: 'countIf(usage_events.retry != 0)',
}

export const ROLLUPS: Rollup[] = [
  {
    table: 'cost_windows',
    key: ['window_start', "toDateTime(toStartOfMinute(timestamp), 'UTC')"],
    columns: {
      ...common,
      cache_write_tokens: 'sum(cache_write_tokens)',
      cost_sq_sum: 'sum(toFloat64(usage_events.cost_usd) * toFloat64(usage_events.cost_usd))',
      late_events: 'countIf(late)',
      deployments: "sumMap(if(deployment_id = '', CAST(map(), 'Map(String, UInt64)'), map(deployment_id, toUInt64(1))))",
      ...components,
    },
  },
  { table: 'cost_hourly', key: ['hour', "toDateTime(toStartOfHour(timestamp), 'UTC')"], columns: common },
  { table: 'cost_daily', key: ['day', 'toDate(timestamp)'], columns: common },
  // per environment (migrations 040 and 041)
  {
    table: 'cost_windows_env',
    dims: ['team', 'environment', 'endpoint', 'model'],
    key: ['window_start', "toDateTime(toStartOfMinute(timestamp), 'UTC')"],
    columns: {
      ...common,
      cache_write_tokens: 'sum(cache_write_tokens)',
      reasoning_tokens: 'sum(reasoning_tokens)',
      cost_sq_sum: 'sum(toFloat64(usage_events.cost_usd) * toFloat64(usage_events.cost_usd))',
      late_events: 'countIf(late)',
      deployments: "sumMap(if(deployment_id = '', CAST(map(), 'Map(String, UInt64)'), map(deployment_id, toUInt64(1))))",
      ...components,
    },
  },
  {
    table: 'cost_hourly_env',
    dims: ['team', 'environment', 'endpoint', 'model', 'provider'],
    key: ['hour', "toDateTime(toStartOfHour(timestamp), 'UTC')"],
    columns: { ...common, cache_write_tokens: 'sum(cache_write_tokens)', reasoning_tokens: 'sum(reasoning_tokens)' },
  },
]

export function reconcileQuery(r: Rollup): string {
  const [keyCol, keyExpr] = r.key
  const cols = Object.keys(r.columns)
  const dims = (r.dims ?? ['team', 'endpoint', 'model']).join(', ')
  const recent = `(${dims}, ${keyExpr}) IN (SELECT ${dims}, ${keyExpr} FROM usage_events WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64}))`
  const diff = (c: string) => (c === 'deployments' ? `mapSubtract(e_${c}, w_${c})` : `e_${c} - w_${c}`)
  // a repair is a correction, not a retry: never dropped as a duplicate of an earlier identical block
  return `INSERT INTO ${r.table} (${dims}, ${keyCol}, ${cols.join(', ')}) SETTINGS insert_deduplicate = 0
SELECT ${dims}, k, ${cols.map((c) => `${diff(c)} AS ${c}`).join(', ')}
FROM (
  SELECT ${dims}, ${keyExpr} AS k, ${cols.map((c) => `${r.columns[c]} AS e_${c}`).join(', ')}
  FROM usage_events WHERE ${recent}
  GROUP BY ${dims}, k
) AS e
LEFT JOIN (
  SELECT ${dims}, ${keyCol} AS k, ${cols.map((c) => `${c === 'deployments' ? 'sumMap' : 'sum'}(${c}) AS w_${c}`).join(', ')}
  FROM ${r.table} WHERE (${dims}, ${keyCol}) IN (SELECT ${dims}, ${keyExpr} FROM usage_events WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64}))
  GROUP BY ${dims}, k
) AS w USING (${dims}, k)
WHERE e_requests > w_requests`
}

/** Repairs the rollups of rows ingested in the last `lookbackMs` before the newest one. Returns the keys repaired per table. */
export async function reconcileRollups(client: ClickHouseClient, lookbackMs = 15 * 60_000): Promise<Record<string, number>> {
  const rs = await client.query({ query: 'SELECT toUnixTimestamp64Milli(max(ingested_at)) AS t, count() AS n FROM usage_events', format: 'JSONEachRow' })
  const [r] = await rs.json<{ t: number | string; n: number | string }>()
  const repaired: Record<string, number> = {}
  if (!r || Number(r.n) === 0) return repaired
  const since = Number(r.t) - lookbackMs
  for (const rollup of ROLLUPS) {
    const before = await client.query({ query: `SELECT count() AS n FROM (${reconcileQuery(rollup).replace(/^INSERT INTO [^\n]+\n/, '')})`, query_params: { since }, format: 'JSONEachRow' })
    const n = Number((await before.json<{ n: number | string }>())[0]?.n ?? 0)
    if (n > 0) await client.command({ query: reconcileQuery(rollup), query_params: { since } })
    repaired[rollup.table] = n
  }
  // the offsets view keeps maxima: inserting the true maxima again is always safe
  await client.command({
    query: `INSERT INTO usage_offsets SETTINGS insert_deduplicate = 0 SELECT kafka_topic, kafka_partition, max(kafka_offset), max(timestamp) FROM usage_events WHERE ingested_at >= fromUnixTimestamp64Milli({since:Int64}) GROUP BY kafka_topic, kafka_partition`,
    query_params: { since },
  })
  return repaired
}
