/**
 * Bench part 2: backtest speed. Writes an NDJSON file of realistic events (a day of traffic over
 * the demo series plus more, token counts from the Azure LLM inference trace 2023, CC-BY-4.0,
 * one output-token regression), then times, on the same file:
 *   - a bare loop: readLineBatches + JSON.parse of every line (the floor of any backtest);
 *   - runBacktest (decode, dedup, price, window, detect, write alerts).
 * Both are warmed up once on a smaller file first; each is then run BENCH_BACKTEST_REPS times
 * (default 3) and the fastest run counts. The alerts file's SHA-256 is reported so an
 * optimization can be checked to leave the alerts unchanged. Env: BENCH_BACKTEST_EVENTS,
 * BENCH_BACKTEST_WORKERS (decode workers; default as `burnwatch backtest`).
 */
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ConfigFileSchema } from '../shared/config.ts'
import { runBacktest, type BacktestSummary } from '../services/backtest/run.ts'
import { readLineBatches } from '../services/backtest/lines.ts'
import { DEMO_SERIES, generateTraffic } from '../services/demo/traffic.ts'
import { benchSeries, loadTrace } from './lib/traffic.ts'
import { progress, report } from './lib/child.ts'

const P = 'backtest'
const N = Number(process.env.BENCH_BACKTEST_EVENTS ?? 520_000)
const REPS = Number(process.env.BENCH_BACKTEST_REPS ?? 3)
const WARMUP = 60_000

export interface BacktestResult {
  events: number
  fileBytes: number
  bare: { seconds: number; eventsPerSecond: number }
  backtest: { seconds: number; eventsPerSecond: number; windows: number; alerts: number; alertsSha256: string }
  ratio: number
  reps: number
}

const dir = mkdtempSync(join(tmpdir(), 'bw-bench-backtest-'))
const eventsPath = join(dir, 'events.ndjson')
const warmPath = join(dir, 'warmup.ndjson')
const trace = loadTrace()
progress(P, `writing ${N.toLocaleString('en')} events to ${eventsPath}`)
{
  // the demo series and 16 more: ~350 events a minute, about a day of event time
  const series = [...DEMO_SERIES, ...benchSeries(16, 16)]
  const minutes = 1800
  // a fixed day in the past: the same file, and so the same alerts, in every run
  const start = Date.UTC(2026, 0, 5)
  const regression = { team: 'search', endpoint: 'POST /v1/summarize', at: start + Math.round(minutes * 0.75) * 60_000, deployment_id: 'search-api-bench-regression', outputFactor: 1.4 }
  const lines: string[] = []
  for (const e of generateTraffic({ start, minutes, series, regression, pairs: trace.pairs, seed: 11 })) {
    lines.push(JSON.stringify(e))
    if (lines.length >= N) break
  }
  if (lines.length < N) throw new Error(`generated only ${lines.length} events`)
  writeFileSync(eventsPath, lines.join('\n') + '\n')
  writeFileSync(warmPath, lines.slice(0, WARMUP).join('\n') + '\n')
}
const fileBytes = statSync(eventsPath).size
const file = ConfigFileSchema.parse({})

async function bare(path: string): Promise<number> {
  const t0 = performance.now()
  let n = 0
  for await (const lines of readLineBatches(path)) {
    for (const line of lines) {
      if (line.length === 0) continue
      JSON.parse(line)
      n++
    }
  }
  if (n === 0) throw new Error('no lines')
  return (performance.now() - t0) / 1000
}

async function backtest(path: string, alertsOut: string): Promise<BacktestSummary> {
  return runBacktest({ eventsPath: path, alertsOut, file, ...(process.env.BENCH_BACKTEST_WORKERS ? { workers: Number(process.env.BENCH_BACKTEST_WORKERS) } : {}) })
}

progress(P, 'warming up both on a 60k-event file')
await bare(warmPath)
await backtest(warmPath, join(dir, 'warm-alerts.ndjson'))

let bestBare = Infinity
let best: BacktestSummary | null = null
let sha = ''
for (let r = 0; r < REPS; r++) {
  const b = await bare(eventsPath)
  bestBare = Math.min(bestBare, b)
  const alertsOut = join(dir, `alerts-${r}.ndjson`)
  const s = await backtest(eventsPath, alertsOut)
  const h = createHash('sha256').update(readFileSync(alertsOut)).digest('hex')
  if (sha && h !== sha) throw new Error('the backtest wrote different alerts on the same file')
  sha = h
  if (s.events !== N) throw new Error(`backtest counted ${s.events} events, expected ${N}`)
  if (!best || s.seconds < best.seconds) best = s
  progress(P, `rep ${r + 1}/${REPS}: bare ${(N / b).toFixed(0)} events/s, backtest ${s.eventsPerSecond.toFixed(0)} events/s (${s.windows} windows, ${s.alerts} alerts)`)
}
if (process.env.BENCH_KEEP_ALERTS) writeFileSync(process.env.BENCH_KEEP_ALERTS, readFileSync(join(dir, 'alerts-0.ndjson')))
rmSync(dir, { recursive: true, force: true })

const result: BacktestResult = {
  events: N,
  fileBytes,
  bare: { seconds: bestBare, eventsPerSecond: N / bestBare },
  backtest: { seconds: best!.seconds, eventsPerSecond: best!.eventsPerSecond, windows: best!.windows, alerts: best!.alerts, alertsSha256: sha },
  ratio: bestBare / best!.seconds,
  reps: REPS,
}
report(result)
