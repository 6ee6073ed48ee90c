/** The demo's data in a running pipeline, for the dashboard tests. */
import type { ClickHouseClient } from '@clickhouse/client'
import { waitFor } from './pipeline.ts'

/** Waits until the demo's regression (search · POST /v1/summarize) has fired; its alert_id. */
export function waitForDemoAlert(ch: ClickHouseClient, timeoutMs = 150_000): Promise<string> {
  return waitFor(
    "the demo's alert",
    async () => {
      const rs = await ch.query({ query: `SELECT alert_id FROM alerts WHERE team = 'search' AND endpoint = {e:String} AND status = 'firing' LIMIT 1`, query_params: { e: 'POST /v1/summarize' }, format: 'JSONEachRow' })
      return (await rs.json<{ alert_id: string }>())[0]?.alert_id
    },
    timeoutMs,
  )
}
