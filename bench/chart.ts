/**
 * Bench part 5: the time to render a page's chart (Vega-Lite → SVG → resvg PNG), in a fresh
 * process: the first (cold: compiling, font loading) and then BENCH_CHARTS (default 40) charts
 * of a break with 120 buckets and two deployment markers. Target: ≤ 200 ms per chart.
 */
import { renderChart, type ChartInput } from '../services/notifier/chart.ts'
import { chartSpan } from '../services/notifier/chart-data.ts'
import { mulberry32 } from '../services/demo/traffic.ts'
import { progress, report } from './lib/child.ts'

const P = 'chart'
const N = Number(process.env.BENCH_CHARTS ?? 40)

export interface ChartResult {
  charts: number
  coldMs: number
  medianMs: number
  p95Ms: number
  maxMs: number
  /** CPU time of this process per chart (user + system), median: what a chart costs when the machine is shared */
  medianCpuMs: number
  pngBytes: number
  size: string
  targetMs: number
}

function input(seed: number): ChartInput {
  const rand = mulberry32(seed)
  const startedAt = Date.parse('2026-11-22T18:00:00.000Z') + seed * 60_000
  const alert = { alert_id: `bench-${seed}`, status: 'firing' as const, team: 'search', endpoint: 'POST /v1/summarize', model: 'claude-3-5-haiku', signal: 'cost_per_request' as const, baseline: 0.0012, current: 0.00168, change_pct: 40, started_at: new Date(startedAt).toISOString(), detected_at: new Date(startedAt + 12 * 60_000).toISOString() }
  const span = chartSpan(alert)
  const points = []
  for (let t = span.from; t <= span.to; t += span.bucketMinutes * 60_000) points.push({ t, requests: 300, value: (t < startedAt ? 0.0012 : 0.00168) * (1 + (rand() - 0.5) * 0.1) })
  return { alert, points, deployments: [{ deployment_id: 'search-api-2026.11.22-7f3c2e1', at: startedAt, source: 'marker' }, { deployment_id: 'search-api-r3', at: startedAt - 90 * 60_000, source: 'traffic' }], bucketMinutes: span.bucketMinutes }
}

let t = performance.now()
const first = await renderChart(input(0))
const coldMs = performance.now() - t
const times: number[] = []
const cpu: number[] = []
for (let i = 1; i <= N; i++) {
  t = performance.now()
  const c = process.cpuUsage()
  await renderChart(input(i))
  times.push(performance.now() - t)
  const d = process.cpuUsage(c)
  cpu.push((d.user + d.system) / 1000)
}
times.sort((a, b) => a - b)
cpu.sort((a, b) => a - b)
const q = (p: number) => times[Math.min(times.length - 1, Math.floor(p * times.length))]!
const result: ChartResult = { charts: N, coldMs, medianMs: q(0.5), p95Ms: q(0.95), maxMs: times.at(-1)!, medianCpuMs: cpu[Math.floor(cpu.length / 2)]!, pngBytes: first.png.length, size: `${first.width}×${first.height}`, targetMs: 200 }
progress(P, `cold ${coldMs.toFixed(0)} ms, then median ${result.medianMs.toFixed(1)} ms (CPU ${result.medianCpuMs.toFixed(1)} ms), p95 ${result.p95Ms.toFixed(1)} ms over ${N} charts (${result.size}, ${Math.round(result.pngBytes / 1024)} KiB)`)
report(result)
