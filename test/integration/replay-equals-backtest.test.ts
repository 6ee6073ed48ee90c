/**
 * Event-time semantics end to end: replaying recorded events through the running pipeline
 * (HTTP ingest → bus → aggregator → detector), at any speed, gives the same alerts as
 * `burnwatch backtest` on the same file.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { generateTraffic, DEMO_SERIES } from '../../services/demo/traffic.ts'
import { runBacktest } from '../../services/backtest/run.ts'
import { startStages, type RunningStages } from '../../services/cli/stages.ts'
import { replay } from '../../services/cli/replay.ts'
import { loadConfig, ConfigFileSchema } from '../../shared/config.ts'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { testLogger, waitFor } from '../support/pipeline.ts'
import type { AlertRecord } from '../../schemas/alert.ts'

const dir = mkdtempSync(join(tmpdir(), 'bw-replay-'))
const running: RunningStages[] = []
afterAll(async () => {
  for (const r of running) await r.stop()
})

const minutes = 5 * 60
const end = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000
const start = end - minutes * 60_000
const eventsPath = join(dir, 'events.ndjson')
writeFileSync(
  eventsPath,
  [...generateTraffic({ start, minutes, series: DEMO_SERIES, seed: 11, regression: { team: 'search', endpoint: 'POST /v1/summarize', at: start + 3 * 3_600_000, deployment_id: 'search-api-bad', outputFactor: 1.6 } })]
    .map((e) => JSON.stringify(e))
    .join('\n') + '\n',
)
// windows that close by event time alone (the live run's last windows close by wall time later)
const cutoff = end - 3 * 60_000

const key = (a: AlertRecord) => ({ alert_id: a.alert_id, status: a.status, signal: a.signal, endpoint: a.endpoint, started_at: a.started_at, detected_at: a.detected_at, deployment_ids: a.deployment_ids, change_pct: a.change_pct })

// the live detector keeps 2 endpoints' state in memory and reads the others back from its scratch
// file (services/detector/core/cells.ts); the backtest keeps every endpoint in memory
const configPath = join(dir, 'burnwatch.yaml')
writeFileSync(configPath, 'defaults:\n  hot_endpoints: 2\n')

async function live(rate: number): Promise<ReturnType<typeof key>[]> {
  const config = loadConfig({ ...testClickHouseEnv(inject('clickhouse')), PORT: '0', LOG_LEVEL: 'warn', BURNWATCH_CONFIG: configPath })
  expect(config.file.defaults.hot_endpoints).toBe(2)
  const sink = new Writable({ write: (_c, _e, cb) => cb() })
  const r = await startStages(['ingest', 'aggregate', 'detect', 'notify'], config, testLogger(), { out: sink })
  running.push(r)
  const sent = await replay({ eventsPath, url: r.ingestUrl!, rate, batchSize: 500 })
  expect(sent.rejected).toBe(0)
  const ch = r.runtime.clickhouse.client
  // every window that closed by event time has reached the detector
  await waitFor('the windows before the cutoff at the detector', async () => {
    const lag = (await r.runtime.bus.lag('burnwatch-aggregator', config.kafka.topics.events)) + (await r.runtime.bus.lag('burnwatch-detector', config.kafka.topics.windows))
    const rs = await ch.query({ query: 'SELECT count() AS n FROM usage_events', format: 'JSONEachRow' })
    return lag === 0 && Number((await rs.json<{ n: number }>())[0]!.n) === sent.sent
  })
  // the cold path ran: endpoints' state was read back from the scratch file (the metric is set every 1,000 windows)
  const reads = (await r.runtime.registry.getSingleMetric('burnwatch_detector_cell_reads_total')?.get())?.values[0]?.value ?? 0
  expect(reads).toBeGreaterThan(0)
  const rs = await ch.query({ query: `SELECT * EXCEPT recorded_at FROM alerts FINAL ORDER BY detected_at, alert_id, status`, format: 'JSONEachRow' })
  const rows = await rs.json<Record<string, unknown>>()
  return rows
    .map((a) => ({ ...a, started_at: new Date(String(a.started_at).replace(' ', 'T') + 'Z').toISOString(), detected_at: new Date(String(a.detected_at).replace(' ', 'T') + 'Z').toISOString() }) as unknown as AlertRecord)
    .filter((a) => Date.parse(a.detected_at) <= cutoff)
    .map(key)
}

describe('replay through the running pipeline equals the backtest', () => {
  it('gives the same alerts at full speed and at a limited rate', { timeout: 240_000 }, async () => {
    const alertsOut = join(dir, 'alerts.ndjson')
    await runBacktest({ eventsPath, alertsOut, file: ConfigFileSchema.parse({}) })
    const expected = readFileSync(alertsOut, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as AlertRecord)
      .filter((a) => Date.parse(a.detected_at) <= cutoff)
      .sort((a, b) => (a.detected_at + a.alert_id + a.status < b.detected_at + b.alert_id + b.status ? -1 : 1))
      .map(key)
    // the injected regression is among them, attributed to its deployment
    expect(expected.some((a) => a.status === 'firing' && a.deployment_ids[0] === 'search-api-bad')).toBe(true)

    const fast = await live(0)
    expect(fast).toEqual(expected)
    const slow = await live(20_000)
    expect(slow).toEqual(expected)
  })
})
