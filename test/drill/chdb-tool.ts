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
import { insertWindows, queryTotals } from './totals.ts'
import type { WindowRecord } from '../../schemas/window.ts'

const [command, raw] = process.argv.slice(2)
const args = JSON.parse(raw ?? '{}') as { dataDir: string; database?: string; file?: string; query?: string }
const h = await openClickHouse({ url: null, user: 'default', password: '', database: args.database ?? 'burnwatch', dataDir: args.dataDir })
try {
  await migrate(h.client)
  if (command === 'totals') {
    process.stdout.write(JSON.stringify(await queryTotals(h.client)) + '\n')
  } else if (command === 'insert-windows') {
    // what the aggregator's materialized view writes to cost_windows in a shared ClickHouse
    const windows = readFileSync(args.file!, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as WindowRecord)
    await insertWindows(h.client, windows)
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
