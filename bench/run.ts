/**
 * `npm run bench`: Burnwatch's measures in one run (DESIGN.md "Measures"), each part in a fresh
 * Node process against the same Kafka broker (provisioned as the tests do: KAFKA_BROKERS,
 * Testcontainers or the local KRaft broker) and its own chDB in a temp dir:
 *   1. pipeline drain throughput: aggregator vs a bare kafkajs consumer on the same topic (bench/drain.ts)
 *   2. backtest speed vs a bare read + JSON.parse loop on the same file (bench/backtest.ts)
 *   3. end-to-end alert latency in the embedded mode (bench/latency.ts)
 *   4. memory per active series: windower + deduper, detector core (bench/rss.ts)
 *   5. the render time of a page's chart (bench/chart.ts)
 *   6. the server path: `burnwatch aggregate` processes into a ClickHouse server over HTTP vs a
 *      bare consumer, CPU per event, two aggregators vs one (bench/server.ts)
 * Writes bench/results/latest.json, prints a table, and prints that JSON on one line LAST.
 *
 * Event token counts come from the Azure LLM inference trace 2023 (Patel et al., "Splitwise",
 * ISCA 2024), CC-BY-4.0: https://github.com/Azure/AzurePublicDataset
 *
 * Env: BENCH_ONLY=drain,backtest,latency,rss,chart,server (a subset), BENCH_CPU_PROF=<dir> (profile the drain
 * part with --cpu-prof), BENCH_EVENTS / BENCH_SERIES / BENCH_BACKTEST_EVENTS / BENCH_RSS_SERIES.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, totalmem, release } from 'node:os'
import { fileURLToPath } from 'node:url'
import { provisionKafka, type ProvisionedKafka } from '../test/support/kafka.ts'
import { runPart } from './lib/child.ts'
import { TRACE_CREDIT } from './lib/traffic.ts'
import type { DrainResult } from './drain.ts'
import type { BacktestResult } from './backtest.ts'
import type { LatencyResult } from './latency.ts'
import type { RssResult } from './rss.ts'
import { ConfigFileSchema } from '../shared/config.ts'
import type { ChartResult } from './chart.ts'
import type { ServerResult } from './server.ts'

const here = (f: string) => fileURLToPath(new URL(f, import.meta.url))
const only = new Set((process.env.BENCH_ONLY ?? 'drain,backtest,latency,rss,chart,server').split(',').map((s) => s.trim()))
const t0 = performance.now()

interface Results {
  at: string
  machine: { node: string; cpus: number; cpuModel: string; memoryGB: number; os: string; kafka: string; kafkaSource: string; clickhouse: string | null; chdbPackage: string | null }
  drain: DrainResult | { error: string } | null
  backtest: BacktestResult | { error: string } | null
  latency: LatencyResult | { error: string } | null
  rss: RssResult | { error: string } | null
  chart: ChartResult | { error: string } | null
  server: ServerResult | { error: string } | null
  seconds: number
  credit: string
}

const results: Results = {
  at: new Date().toISOString(),
  machine: { node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? 'unknown', memoryGB: Math.round(totalmem() / 2 ** 30), os: `${process.platform} ${release()}`, kafka: 'n/a', kafkaSource: 'n/a', clickhouse: null, chdbPackage: null },
  drain: null,
  backtest: null,
  latency: null,
  rss: null,
  chart: null,
  server: null,
  seconds: 0,
  credit: TRACE_CREDIT,
}

const step = (n: number, what: string) => console.log(`\n[${n}/6] ${what}  (+${((performance.now() - t0) / 1000).toFixed(0)} s)`)
const failed = (err: unknown) => ({ error: err instanceof Error ? err.message : String(err) })

console.log(`Burnwatch bench — node ${process.version}, ${results.machine.cpus} × ${results.machine.cpuModel}, ${results.machine.memoryGB} GB`)
console.log(TRACE_CREDIT)

let kafka: ProvisionedKafka | null = null
try {
  if (only.has('drain') || only.has('server')) {
    console.log('  provisioning Kafka (KAFKA_BROKERS, Testcontainers or the local KRaft broker)…')
    kafka = await provisionKafka()
    results.machine.kafka = kafka.version
    results.machine.kafkaSource = kafka.source
    console.log(`  Kafka ${kafka.version} (${kafka.source}) at ${kafka.brokers.join(',')}`)
  }
  if (kafka && only.has('drain')) {
    step(1, 'pipeline drain throughput (Kafka → aggregator → ClickHouse vs a bare kafkajs consumer)')
    try {
      const prof = process.env.BENCH_CPU_PROF
      const r = await runPart<DrainResult>(here('./drain.ts'), { KAFKA_BROKERS: kafka.brokers.join(',') }, prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [])
      results.drain = r.result
      results.machine.clickhouse = r.result.engine.clickhouse
      results.machine.chdbPackage = r.result.engine.chdbPackage
    } catch (err) {
      results.drain = failed(err)
      console.log(`  FAILED: ${results.drain.error}`)
    }
  }
  if (kafka && only.has('server')) {
    step(6, 'the server path: aggregator processes → ClickHouse server over HTTP vs a bare consumer; two vs one')
    results.server = await runPart<ServerResult>(here('./server.ts'), { KAFKA_BROKERS: kafka.brokers.join(',') }).then((r) => r.result, failed)
    if ('error' in results.server) console.log(`  FAILED: ${results.server.error}`)
  }
  await kafka?.stop().catch(() => {})
  kafka = null
  if (only.has('backtest')) {
    step(2, 'backtest speed vs a bare read + JSON.parse loop')
    results.backtest = await runPart<BacktestResult>(here('./backtest.ts'), {}).then((r) => r.result, failed)
  }
  if (only.has('latency')) {
    step(3, 'end-to-end alert latency (embedded: ingest → aggregate → detect → notify in one process)')
    results.latency = await runPart<LatencyResult>(here('./latency.ts'), { KAFKA_BROKERS: '' }).then((r) => r.result, failed)
  }
  if (only.has('rss')) {
    step(4, 'memory per active series')
    // twice, at half the series and at all of them: the difference is what each further series
    // costs, without the process's fixed part (code, pools, the GC's headroom after the churn of
    // reading cold endpoints back) that the average at one size carries
    const series = Number(process.env.BENCH_RSS_SERIES ?? 20_000)
    // no V8 flags but --expose-gc: bench/rss.ts applies shared/v8-memory.ts as `burnwatch start` does
    const flags = ['--expose-gc']
    // and glibc's malloc arenas capped as bin/burnwatch.js caps them for `start` and `detect`
    const arenas: Record<string, string> = process.env.BURNWATCH_V8_FAVOR_MEMORY !== '0' && !process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: '2' } : {}
    const half = await runPart<RssResult>(here('./rss.ts'), { BENCH_RSS_SERIES: String(Math.round(series / 2)), ...arenas }, flags).then((r) => r.result, failed)
    results.rss = await runPart<RssResult>(here('./rss.ts'), { BENCH_RSS_SERIES: String(series), ...arenas }, flags).then((r) => r.result, failed)
    if (!('error' in results.rss) && !('error' in half)) results.rss.half = half
  }
  if (only.has('chart')) {
    step(5, "a page's chart: Vega-Lite → SVG → PNG (resvg)")
    results.chart = await runPart<ChartResult>(here('./chart.ts'), {}).then((r) => r.result, failed)
  }
} finally {
  results.seconds = (performance.now() - t0) / 1000
}

// --- the table --------------------------------------------------------------------------------------
const n = (x: number, d = 0) => x.toLocaleString('en', { maximumFractionDigits: d, minimumFractionDigits: d })
const rows: [string, string, string][] = []
const ok = <T extends object>(r: T | { error: string } | null): T | null => (r && !('error' in r) ? (r as T) : null)
const d = ok(results.drain)
if (d) {
  rows.push(['drain: bare kafkajs consumer', `${n(d.bare.eventsPerSecond)} events/s`, `${n(d.events)} events, ${d.series} series, ${n(d.avgEventBytes)} B avg`])
  rows.push(['drain: aggregator → ClickHouse', `${n(d.aggregator.eventsPerSecond)} events/s`, `${d.aggregator.batches} batches, ${n(d.aggregator.windowsPublished)} windows out`])
  rows.push(['drain: ratio aggregator/bare', n(d.ratio, 3), 'target ≥ 0.6'])
  rows.push(['drain: same, no ClickHouse', `${n(d.withoutClickHouse.eventsPerSecond)} events/s`, `ratio ${n(d.withoutClickHouse.ratio, 3)}: diagnosis, rows encoded but not inserted`])
}
const b = ok(results.backtest)
if (b) {
  rows.push(['backtest: bare read + JSON.parse', `${n(b.bare.eventsPerSecond)} events/s`, `${n(b.events)} events, ${n(b.fileBytes / 1e6)} MB`])
  rows.push(['backtest: runBacktest', `${n(b.backtest.eventsPerSecond)} events/s`, `${n(b.backtest.windows)} windows, ${b.backtest.alerts} alerts`])
  rows.push(['backtest: ratio', n(b.ratio, 3), `target ≥ 0.5; alerts sha256 ${b.backtest.alertsSha256.slice(0, 12)}`])
}
const l = ok(results.latency)
if (l) {
  rows.push(['latency: ingest → stored', `${n(l.stages.ingestToStored, 1)} ms`, `first batch stored at ${n(l.at.storedFirst, 1)} ms; accepted (202) at ${n(l.at.accepted, 1)} ms`])
  rows.push(['latency: ingest → window closed', `${n(l.stages.ingestToWindowClosed, 1)} ms`, `window ${l.window.start.slice(11, 16)} of search / POST /v1/summarize`])
  rows.push(['latency: window closed → alert', `${n(l.stages.windowClosedToAlert, 1)} ms`, `on cost.alerts; in the alerts table +${n(l.stages.alertToAlertRow, 1)} ms`])
  rows.push(['latency: alert → page', `${n(l.stages.alertToPage, 1)} ms`, 'console sink'])
  rows.push(['latency: total (request → page)', `${n(l.totalMs, 1)} ms`, 't0 = request with the event that closes the window'])
}
const r = ok(results.rss)
if (r) {
  rows.push(['memory: windower + deduper', `${n(r.aggregator.rssPerSeries)} B/series RSS`, `heap ${n(r.aggregator.heapPerSeries)} B; ${r.eventsPerSeries} event IDs/series`])
  rows.push(['memory: detector core', `${n(r.detector.rssPerSeries)} B/series RSS`, `live ${n(r.detector.livePerSeries)} B (heap ${n(r.detector.heapPerSeries)} B + typed arrays ${n(r.detector.externalPerSeries)} B); V8 pages resident beyond its heap ${n(r.detector.v8PagesPerSeries)} B; ${r.windowsPerSeries} windows/series`])
  rows.push(['memory: detector scratch file', `${n(r.detector.fileBytesPerSeries)} B/series`, `${n(r.detector.coldEndpoints)} endpoints there, ${n(r.detector.hotEndpoints)} in memory (defaults.hot_endpoints); page cache, not the process's`])
  rows.push(['detector: a live minute', `${n(r.detector.liveUsPerWindow, 1)} µs/window`, `cold endpoints read back and written; ${n(r.detector.hotUsPerWindow, 1)} µs with every endpoint in memory (×${n(r.detector.liveUsPerWindow / r.detector.hotUsPerWindow, 1)})`])
  rows.push(['memory: total', `${n(r.total.rssPerSeries)} B/series RSS`, `after a full GC; live ${n(r.total.livePerSeries)} B/series; ${n(r.series)} series: +${n(r.total.rssBytes / 2 ** 20)} MiB (average, the fixed part included); V8 ${r.v8FavorMemory ? 'favoring memory (as `burnwatch start` and `detect` run)' : 'defaults (BURNWATCH_V8_FAVOR_MEMORY=0)'}`])
  rows.push(['memory: total as running', `${n(r.total.runningRssPerSeries)} B/series RSS`, `no forced GC, right after the feeding; the highest it had been: ${n(r.total.peakRssPerSeries)} B/series (VmHWM)`])
  const h = r.half
  if (h) {
    const dn = r.series - h.series
    const slope = (a: number, b: number) => n((a - b) / dn)
    rows.push([`memory: each further series`, `${slope(r.total.rssBytes, h.total.rssBytes)} B/series RSS`, `${n(h.series)} → ${n(r.series)} series: windower + deduper ${slope(r.aggregator.rssBytes, h.aggregator.rssBytes)} B, detector ${slope(r.detector.rssBytes, h.detector.rssBytes)} B; fixed part ${n((r.total.rssBytes - ((r.total.rssBytes - h.total.rssBytes) / dn) * r.series) / 2 ** 20)} MiB; target ≤ 2,048 B/series`])
  }
  // the caps bound the number of series; this is what the default caps allow at most
  const caps = ConfigFileSchema.parse({}).defaults
  rows.push(['memory: at the series cap', `${n((r.total.rssPerSeries * caps.max_series) / 2 ** 20)} MiB`, `defaults.max_series ${n(caps.max_series)} series (${n(caps.max_series_per_team)} per team) × the average above`])
}
const sv = ok(results.server)
if (sv) {
  rows.push(['server: bare kafkajs consumer', `${n(sv.bare.eventsPerSecond)} events/s`, `${n(sv.events)} events, ${sv.partitions} partitions`])
  rows.push(['server: 1 aggregator → ClickHouse HTTP', `${n(sv.one.eventsPerSecond)} events/s`, `ratio ${n(sv.ratio, 3)} of bare; CPU ${n(sv.one.cpuPerEventUs, 1)} µs/event${sv.one.serverCpuPerEventUs === null ? '' : `, server ${n(sv.one.serverCpuPerEventUs, 1)} µs/event`}`])
  rows.push(['server: 2 aggregators, one group', `${n(sv.two.eventsPerSecond)} events/s`, `×${n(sv.scaling, 2)} of one; CPU ${n(sv.two.cpuPerEventUs, 1)} µs/event${sv.two.serverCpuPerEventUs === null ? '' : `, server ${n(sv.two.serverCpuPerEventUs, 1)} µs/event`}`])
}
const c = ok(results.chart)
if (c) rows.push(['chart: render (median)', `${n(c.medianMs, 1)} ms`, `CPU ${n(c.medianCpuMs, 1)} ms; p95 ${n(c.p95Ms, 1)} ms, max ${n(c.maxMs, 1)} ms, cold ${n(c.coldMs)} ms; ${c.size} PNG; target ≤ ${c.targetMs} ms`])
for (const [k, v] of Object.entries({ drain: results.drain, backtest: results.backtest, latency: results.latency, rss: results.rss, chart: results.chart, server: results.server })) {
  if (v && 'error' in v) rows.push([`${k}: FAILED`, '', v.error.slice(0, 120)])
}
const w0 = Math.max(...rows.map((x) => x[0].length), 10)
const w1 = Math.max(...rows.map((x) => x[1].length), 10)
console.log(`\nResults (${n(results.seconds, 0)} s; node ${results.machine.node}, ${results.machine.cpus} CPUs, Kafka ${results.machine.kafka}, ${results.machine.clickhouse ?? 'chDB'})`)
console.log(`${'measure'.padEnd(w0)}  ${'value'.padStart(w1)}  notes`)
console.log(`${'-'.repeat(w0)}  ${'-'.repeat(w1)}  -----`)
for (const [k, v, note] of rows) console.log(`${k.padEnd(w0)}  ${v.padStart(w1)}  ${note}`)

const out = here('./results/latest.json')
mkdirSync(here('./results'), { recursive: true })
writeFileSync(out, JSON.stringify(results, null, 2) + '\n')
console.log(`\nwrote ${out}`)
console.log(JSON.stringify(results))
const anyFailed = [results.drain, results.backtest, results.latency, results.rss, results.chart, results.server].some((x) => x && 'error' in x)
process.exitCode = anyFailed ? 1 : 0
