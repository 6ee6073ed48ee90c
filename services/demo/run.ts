/**
 * `npm run demo` / `burnwatch demo`: the whole product in one process on a day of realistic
 * traffic (token counts from the Azure LLM inference trace 2023, CC-BY-4.0), compressed to well
 * under a minute. At 18:00 of that day a deployment raises output tokens per request by 40% on
 * search's summarize endpoint; Burnwatch pages, and the demo then prints what an analyst would
 * query: cost per request before and after the deployment.
 */
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Command } from '../cli/main.ts'
import { loadConfig } from '../../shared/config.ts'
import { createLogger } from '../../shared/logger.ts'
import { startStages } from '../cli/stages.ts'
import { replay } from '../cli/replay.ts'
import { generateTraffic, DEMO_SERIES } from './traffic.ts'
import { progress } from '../cli/commands.ts'

export const DEMO_DEPLOYMENT = 'search-api-2026.11.22-7f3c2e1'

/** The analyst's question, as documented in docs/clickhouse.md: cost per request before and after a deployment. */
export const BEFORE_AFTER_SQL = `
SELECT
    if(timestamp < {deployed_at:DateTime64(3)}, 'before', 'after') AS period,
    count() AS requests,
    round(toFloat64(sum(cost_usd)) / count(), 8) AS cost_per_request_usd,
    round(avg(output_tokens), 1) AS output_tokens_per_request
FROM usage_events
WHERE team = {team:String} AND endpoint = {endpoint:String}
  AND timestamp >= {deployed_at:DateTime64(3)} - INTERVAL 6 HOUR
  AND timestamp <  {deployed_at:DateTime64(3)} + INTERVAL 6 HOUR
GROUP BY period
ORDER BY period DESC`

export interface DemoData {
  eventsPath: string
  events: number
  /** event time of the regressing deployment, ms */
  deployedAt: number
}

/** The demo's traffic as an NDJSON file in `dir`: `minutes` of event time ending 2 minutes ago, the regression at 75%. */
export function writeDemoEvents(dir: string, minutes: number, now = Date.now()): DemoData {
  const end = Math.floor(now / 60_000) * 60_000 - 2 * 60_000
  const start = end - minutes * 60_000
  const deployedAt = start + Math.round(minutes * 0.75) * 60_000
  const eventsPath = join(dir, 'demo-events.ndjson')
  const lines: string[] = []
  for (const e of generateTraffic({ start, minutes, series: DEMO_SERIES, regression: { team: 'search', endpoint: 'POST /v1/summarize', at: deployedAt, deployment_id: DEMO_DEPLOYMENT, outputFactor: 1.4 } })) lines.push(JSON.stringify(e))
  writeFileSync(eventsPath, lines.join('\n') + '\n')
  return { eventsPath, events: lines.length, deployedAt }
}

/** Sends the demo's deployment marker and replays its events through the ingest API at `url`. */
export async function sendDemoData(url: string, data: DemoData, onProgress?: (done: number, total: number) => void) {
  const marker = await fetch(`${url}/v1/deployments`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ deployment_id: DEMO_DEPLOYMENT, team: 'search', service: 'search-api', endpoint: 'POST /v1/summarize', timestamp: new Date(data.deployedAt).toISOString(), version: '2026.11.22', commit: '7f3c2e1' }),
  })
  if (!marker.ok) throw new Error(`the demo's deployment marker was refused: ${marker.status} ${await marker.text()}`)
  return replay({ eventsPath: data.eventsPath, url, rate: 0, batchSize: 2000, ...(onProgress ? { onProgress } : {}) })
}

export const runDemo: Command = async (args, ctx) => {
  const { values } = parseArgs({ args, options: { minutes: { type: 'string' }, keep: { type: 'boolean' }, serve: { type: 'boolean' }, config: { type: 'string' } } })
  const minutes = Number(values.minutes ?? 1440)
  const dataDir = mkdtempSync(join(tmpdir(), 'burnwatch-demo-'))
  const config = loadConfig({ ...process.env, KAFKA_BROKERS: '', CLICKHOUSE_URL: '', SLACK_BOT_TOKEN: process.env.SLACK_BOT_TOKEN ?? '', BURNWATCH_DATA_DIR: dataDir, PORT: '0', UI_PORT: '0', LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn' })
  const logger = createLogger({ level: config.logLevel, secrets: config.secrets, format: config.logFormat })
  const out = ctx.out
  const data = writeDemoEvents(dataDir, minutes)
  const { deployedAt, events: n } = data
  out.write(`demo: ${n} usage events for 4 endpoints of 3 teams over ${minutes / 60} h of event time (token counts from the Azure LLM inference trace 2023, CC-BY-4.0).\n`)
  out.write(`demo: at ${new Date(deployedAt).toISOString()} deployment ${DEMO_DEPLOYMENT} raises output tokens per request by 40% on search / POST /v1/summarize.\n`)

  const running = await startStages(['ingest', 'aggregate', 'detect', 'notify', 'ui'], config, logger, { out })
  const url = running.ingestUrl!
  const t0 = performance.now()
  try {
    const bar = progress('replaying a day of traffic', ctx.err, 'events')
    const r = await sendDemoData(url, data, (done, total) => bar.update(done, total, done))
    bar.stop()
    out.write(`demo: replayed ${r.sent} events through the ingest API in ${r.seconds.toFixed(1)} s.\n`)
    const ch = running.runtime.clickhouse.client
    let page: Record<string, unknown> | undefined
    for (let i = 0; i < 600 && !page; i++) {
      const rs = await ch.query({
        query: `SELECT alert_id, change_pct, started_at, deployment_ids FROM alerts WHERE team = 'search' AND endpoint = {endpoint:String} AND status = 'firing' ORDER BY detected_at LIMIT 1`,
        query_params: { endpoint: 'POST /v1/summarize' },
        format: 'JSONEachRow',
      })
      page = (await rs.json<Record<string, unknown>>())[0]
      if (!page) await sleep(100)
    }
    if (!page) {
      out.write('demo: no page was raised within a minute — that is a bug; please report it with the output above.\n')
      return 1
    }
    // let the notifier render the page before the summary
    await sleep(1500)
    out.write(`\ndemo: paged in ${((performance.now() - t0) / 1000).toFixed(1)} s of wall time: cost per request +${Number(page.change_pct).toFixed(1)}% since ${String(page.started_at)} UTC, most likely deployment ${(page.deployment_ids as string[])[0]}.\n`)
    const rs = await ch.query({ query: BEFORE_AFTER_SQL, query_params: { team: 'search', endpoint: 'POST /v1/summarize', deployed_at: new Date(deployedAt).toISOString().replace('T', ' ').replace('Z', '') }, format: 'JSONEachRow' })
    const rows = await rs.json<{ period: string; requests: number; cost_per_request_usd: number; output_tokens_per_request: number }>()
    out.write(`\nWhat an analyst would ask ClickHouse (docs/clickhouse.md, "cost per request before and after a deployment"):\n${BEFORE_AFTER_SQL.trim()}\n\n`)
    out.write(`period  requests  cost/request (USD)  output tokens/request\n`)
    for (const r2 of rows) out.write(`${r2.period.padEnd(8)}${String(r2.requests).padStart(8)}  ${String(r2.cost_per_request_usd).padStart(18)}  ${String(r2.output_tokens_per_request).padStart(21)}\n`)
    const before = rows.find((x) => x.period === 'before')
    const after = rows.find((x) => x.period === 'after')
    if (before && after) out.write(`\ncost per request after ${DEMO_DEPLOYMENT}: ${(((after.cost_per_request_usd - before.cost_per_request_usd) / before.cost_per_request_usd) * 100).toFixed(1)}% vs before.\n`)
    if (running.uiUrl) {
      out.write(`\nThe alert's page on the dashboard: ${running.uiUrl}/alerts/${encodeURIComponent(String(page.alert_id))}\n`)
      if (values.serve) {
        out.write('demo: the dashboard stays up until Ctrl-C (--serve).\n')
        await new Promise<void>((resolve) => {
          process.once('SIGINT', () => resolve())
          process.once('SIGTERM', () => resolve())
        })
      } else out.write('demo: run `npm run demo -- --serve` to keep it up and look.\n')
    }
    return 0
  } finally {
    await running.stop()
    if (!values.keep) rmSync(dataDir, { recursive: true, force: true })
    else out.write(`demo data kept in ${dataDir}\n`)
  }
}
