/**
 * A tiny process that opens one chDB data dir (chDB is one engine per process and one process
 * per data dir, so the drill runner cannot open every stage's database itself):
 *   node test/drill/chdb-tool.ts totals '{"dataDir": "...", "database": "burnwatch"}'
 *   node test/drill/chdb-tool.ts insert-windows '{"dataDir": "...", "database": "burnwatch", "file": "windows.ndjson"}'
 *   node test/drill/chdb-tool.ts query '{"dataDir": "...", "database": "burnwatch", "query": "SELECT ..."}'
 * Prints one JSON line.
 */
import { readFileSync } from 'node:fs'
import { openClickHouse } from '../../shared/clickhouse/client.ts'
import { migrate } from '../../shared/clickhouse/migrate.ts'
import type { WindowRecord } from '../../schemas/window.ts'

const [command, raw] = process.argv.slice(2)
const args = JSON.parse(raw ?? '{}') as { dataDir: string; database?: string; file?: string; query?: string }
const h = await openClickHouse({ url: null, user: 'default', password: '', database: args.database ?? 'burnwatch', dataDir: args.dataDir })
try {
  await migrate(h.client)
  if (command === 'totals') {
    const rs = await h.client.query({
      query: 'SELECT count() AS rows, uniqExact(event_id) AS ids, sum(input_tokens) AS input, sum(output_tokens) AS output FROM usage_events',
      format: 'JSONEachRow',
    })
    const [t] = await rs.json<{ rows: number; ids: number; input: number; output: number }>()
    const w = await h.client.query({ query: 'SELECT sum(requests) AS r FROM cost_windows', format: 'JSONEachRow' })
    const [wr] = await w.json<{ r: number }>()
    const rollup = async (table: string) => Number(((await (await h.client.query({ query: `SELECT sum(requests) AS r FROM ${table}`, format: 'JSONEachRow' })).json<{ r: number }>())[0]?.r ?? 0))
    const hourly = await rollup('cost_hourly')
    const daily = await rollup('cost_daily')
    const idRs = await h.client.query({ query: 'SELECT DISTINCT event_id FROM usage_events', format: 'JSONEachRow' })
    const idList = (await idRs.json<{ event_id: string }>()).map((r) => r.event_id)
    process.stdout.write(JSON.stringify({ rows: Number(t?.rows ?? 0), ids: Number(t?.ids ?? 0), input: Number(t?.input ?? 0), output: Number(t?.output ?? 0), windowRequests: Number(wr?.r ?? 0), hourlyRequests: hourly, dailyRequests: daily, idList }) + '\n')
  } else if (command === 'insert-windows') {
    // what the aggregator's materialized view writes to cost_windows in a shared ClickHouse
    const windows = readFileSync(args.file!, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as WindowRecord)
    // and to cost_windows_env (environment in the key), which the detector rebuilds from (migration 041)
    for (const table of ['cost_windows', 'cost_windows_env'] as const) {
      if (!windows.length) break
      await h.client.insert({
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
    process.stdout.write(JSON.stringify({ inserted: windows.length }) + '\n')
  } else if (command === 'query') {
    const rs = await h.client.query({ query: args.query!, format: 'JSONEachRow' })
    process.stdout.write(JSON.stringify(await rs.json()) + '\n')
  } else {
    throw new Error(`unknown command ${String(command)}`)
  }
} finally {
  await h.close()
}
