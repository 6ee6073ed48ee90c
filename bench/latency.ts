/**
 * Bench part 3: end-to-end alert latency, wall clock, in the embedded mode: one process runs
 * ingest → aggregate → detect → notify (startStages, in-process bus, chDB, console page sink).
 *
 * Traffic: the demo series (token counts from the Azure LLM inference trace 2023, CC-BY-4.0),
 * 2 h of baseline then a deployment raising output tokens per request by 40% on
 * search / POST /v1/summarize; event time ends at the last 18:00 UTC (same traffic every run). A backtest of the same events names
 * the window W whose close raises the page (detected_at = end of W).
 *
 * Phase A sends, through the HTTP ingest API, every event up to 15 s of event time before W can
 * close (W closes when its partition's watermark, max event time − 30 s allowed lateness, passes
 * W's end), and waits until the pipeline is idle. Phase B is ONE request carrying the next 20 s
 * of events: it contains the first event that lets W close. Measured from the start of that
 * request (t0), wall clock:
 *   accepted     the ingest API answered 202 (the events are on the bus)
 *   storedFirst  the first of them are stored in ClickHouse usage_events (aggregator counter)
 *   stored       all of them are stored (the 3 partitions insert one after another in chDB)
 *   window       W was published on cost.windows (closed right after its partition's insert)
 *   alert        the firing alert was published on cost.alerts (detector)
 *   alertRow     the alert is in the ClickHouse `alerts` table (polled every 5 ms)
 *   page         the notifier wrote the page to the console sink
 */
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { loadConfig } from '../shared/config.ts'
import { createLogger } from '../shared/logger.ts'
import { partitionFor } from '../shared/bus/partitioner.ts'
import { seriesKey } from '../shared/producer/index.ts'
import type { UsageEvent } from '../schemas/usage-event.ts'
import type { AlertRecord } from '../schemas/alert.ts'
import type { WindowRecord } from '../schemas/window.ts'
import { startStages } from '../services/cli/stages.ts'
import { runBacktest } from '../services/backtest/run.ts'
import { DEMO_SERIES, generateTraffic } from '../services/demo/traffic.ts'
import { loadTrace } from './lib/traffic.ts'
import { progress, report } from './lib/child.ts'

const P = 'latency'
const TEAM = 'search'
const ENDPOINT = 'POST /v1/summarize'

export interface LatencyResult {
  events: number
  phaseA: { events: number; seconds: number; eventsPerSecond: number }
  phaseB: { events: number }
  window: { start: string; end: string }
  /** ms after t0 (start of the phase B request) */
  at: { accepted: number; storedFirst: number; stored: number; window: number; alert: number; alertRow: number; page: number }
  /** ms between stages */
  stages: { ingestToStored: number; ingestToWindowClosed: number; windowClosedToAlert: number; alertToAlertRow: number; alertToPage: number }
  totalMs: number
  definition: string
}

const dataDir = mkdtempSync(join(tmpdir(), 'bw-bench-latency-'))
const config = loadConfig({ BURNWATCH_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'warn', CLICKHOUSE_DATABASE: 'bench_latency' })
const windowMs = config.file.defaults.window
const lateness = config.file.defaults.allowed_lateness

// --- traffic and the window that should page ---------------------------------------------------
const trace = loadTrace()
const baselineMinutes = 120
const minutes = baselineMinutes + 30
// event time ends at the latest 18:00 UTC that has passed, so the daily traffic shape (and so the
// page) is the same in every run, and the events are at most a day old
const DAY = 86_400_000
let end = Math.floor(Date.now() / DAY) * DAY + 18 * 3_600_000
if (end > Date.now() - 60_000) end -= DAY
const start = end - minutes * 60_000
const events: UsageEvent[] = [...generateTraffic({ start, minutes, series: DEMO_SERIES, pairs: trace.pairs, seed: 5, regression: { team: TEAM, endpoint: ENDPOINT, at: start + baselineMinutes * 60_000, deployment_id: 'search-api-bench-7f3c2e1', outputFactor: 1.4 } })]
const eventsPath = join(dataDir, 'events.ndjson')
writeFileSync(eventsPath, events.map((e) => JSON.stringify(e)).join('\n') + '\n')
const alertsPath = join(dataDir, 'backtest-alerts.ndjson')
await runBacktest({ eventsPath, alertsOut: alertsPath, file: config.file })
const expected = readFileSync(alertsPath, 'utf8')
  .split('\n')
  .filter(Boolean)
  .map((l) => JSON.parse(l) as AlertRecord)
  .find((a) => a.status === 'firing' && a.team === TEAM && a.endpoint === ENDPOINT)
if (!expected) throw new Error('the backtest raised no page for the regression; cannot measure latency')
const wEnd = Date.parse(expected.detected_at)
const wStart = wEnd - windowMs
// W closes once its partition sees an event at or after wEnd + lateness
const partitionOfW = partitionFor(seriesKey({ team: TEAM, endpoint: ENDPOINT, model: DEMO_SERIES[0]!.model }), 3, 0)
const closeAt = wEnd + lateness
const cutA = closeAt - 15_000
const cutB = closeAt + 5_000
const tsOf = (e: UsageEvent) => Date.parse(e.timestamp)
const phaseA = events.filter((e) => tsOf(e) < cutA)
const phaseB = events.filter((e) => tsOf(e) >= cutA && tsOf(e) < cutB)
if (!phaseB.some((e) => tsOf(e) >= closeAt && partitionFor(seriesKey(e), 3, 0) === partitionOfW)) throw new Error('phase B has no event that closes the window')
progress(P, `${events.length} events over ${minutes} min of event time; the backtest pages on the window ${new Date(wStart).toISOString()} (+${expected.change_pct.toFixed(0)}% ${expected.signal})`)

// --- the pipeline ----------------------------------------------------------------------------------
let t0 = 0
let pageAt = 0
const pageStream = new Writable({
  write(chunk: Buffer | string, _enc, cb) {
    if (t0 && !pageAt && String(chunk).includes('summarize')) pageAt = performance.now()
    cb()
  },
})
const logger = createLogger({ level: 'warn' })
const running = await startStages(['ingest', 'aggregate', 'detect', 'notify'], config, logger, { out: pageStream })
const rt = running.runtime
const url = running.ingestUrl!
const topics = config.kafka.topics

let windowAt = 0
let alertAt = 0
const windowsSeen = { n: 0 }
const watchWindows = rt.bus.consumer({ groupId: 'bench-watch-windows', topics: [topics.windows], fromBeginning: true })
await watchWindows.start(async (b) => {
  for (const m of b.messages) {
    windowsSeen.n++
    if (windowAt || !t0) continue
    const w = JSON.parse(m.value) as WindowRecord
    if (w.team === TEAM && w.endpoint === ENDPOINT && Date.parse(w.window_start) === wStart) windowAt = performance.now()
  }
})
const watchAlerts = rt.bus.consumer({ groupId: 'bench-watch-alerts', topics: [topics.alerts], fromBeginning: true })
await watchAlerts.start(async (b) => {
  for (const m of b.messages) {
    const a = JSON.parse(m.value) as AlertRecord
    if (t0 && !alertAt && a.status === 'firing' && a.team === TEAM && a.endpoint === ENDPOINT) alertAt = performance.now()
  }
})

const storedCounter = async (): Promise<number> => {
  const metric = await rt.registry.getSingleMetric('burnwatch_aggregator_records_total')?.get()
  return (metric?.values ?? []).filter((v) => v.labels.outcome === 'stored').reduce((s, v) => s + v.value, 0)
}

const post = async (batch: UsageEvent[]) => {
  const res = await fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: batch.map((e) => JSON.stringify(e)).join('\n') })
  const body = await res.text()
  if (res.status !== 202) throw new Error(`ingest answered ${res.status}: ${body.slice(0, 300)}`)
}

// --- phase A: the history, then idle ---------------------------------------------------------------
const ta = performance.now()
for (let i = 0; i < phaseA.length; i += 2000) await post(phaseA.slice(i, i + 2000))
while ((await storedCounter()) < phaseA.length) await sleep(5)
const phaseASeconds = (performance.now() - ta) / 1000
for (const g of ['burnwatch-detector', 'burnwatch-notifier']) {
  const topic = g === 'burnwatch-detector' ? topics.windows : topics.alerts
  while ((await rt.bus.lag(g, topic)) > 0) await sleep(5)
}
await sleep(200)
progress(P, `phase A: ${phaseA.length} events through the ingest API and stored in ${phaseASeconds.toFixed(1)} s (${windowsSeen.n} windows closed); pipeline idle`)
const early = await rt.clickhouse.client.query({ query: `SELECT count() AS n FROM alerts WHERE team = {team:String} AND endpoint = {endpoint:String} AND status = 'firing'`, query_params: { team: TEAM, endpoint: ENDPOINT }, format: 'JSONEachRow' })
if (Number((await early.json<{ n: number | string }>())[0]!.n) > 0) throw new Error('the page fired before phase B; the split is wrong')

// --- phase B: one request that lets W close ------------------------------------------------------------
t0 = performance.now()
await post(phaseB)
const acceptedAt = performance.now()
let storedFirstAt = 0
let storedAt = 0
let alertRowAt = 0
const deadline = t0 + 60_000
while ((!storedAt || !alertRowAt || !pageAt) && performance.now() < deadline) {
  if (!storedAt) {
    const n = await storedCounter()
    if (!storedFirstAt && n > phaseA.length) storedFirstAt = performance.now()
    if (n >= phaseA.length + phaseB.length) storedAt = performance.now()
  }
  if (!alertRowAt && alertAt) {
    const rs = await rt.clickhouse.client.query({ query: `SELECT count() AS n FROM alerts WHERE team = {team:String} AND endpoint = {endpoint:String} AND status = 'firing'`, query_params: { team: TEAM, endpoint: ENDPOINT }, format: 'JSONEachRow' })
    if (Number((await rs.json<{ n: number | string }>())[0]!.n) > 0) alertRowAt = performance.now()
  }
  await sleep(storedAt ? 5 : 1)
}
await watchWindows.stop()
await watchAlerts.stop()
await running.stop()
rmSync(dataDir, { recursive: true, force: true })
if (!storedAt || !windowAt || !alertAt || !alertRowAt || !pageAt) throw new Error(`no page within 60 s (stored ${!!storedAt}, window ${!!windowAt}, alert ${!!alertAt}, row ${!!alertRowAt}, page ${!!pageAt})`)

const ms = (t: number) => Math.round((t - t0) * 10) / 10
const at = { accepted: ms(acceptedAt), storedFirst: ms(storedFirstAt), stored: ms(storedAt), window: ms(windowAt), alert: ms(alertAt), alertRow: ms(alertRowAt), page: ms(pageAt) }
const result: LatencyResult = {
  events: events.length,
  phaseA: { events: phaseA.length, seconds: phaseASeconds, eventsPerSecond: phaseA.length / phaseASeconds },
  phaseB: { events: phaseB.length },
  window: { start: new Date(wStart).toISOString(), end: new Date(wEnd).toISOString() },
  at,
  stages: {
    ingestToStored: at.stored,
    ingestToWindowClosed: at.window,
    windowClosedToAlert: Math.round((at.alert - at.window) * 10) / 10,
    alertToAlertRow: Math.round((at.alertRow - at.alert) * 10) / 10,
    alertToPage: Math.round((at.page - at.alert) * 10) / 10,
  },
  totalMs: at.page,
  definition:
    't0 = start of the HTTP request carrying the first event that lets the paging window close (its partition watermark passes the window end); times are wall-clock ms after t0 in one embedded process (in-process bus, chDB, console sink)',
}
report(result)
