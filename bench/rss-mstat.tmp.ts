/**
 * Bench part 4: memory per active series, in a fresh process started with --expose-gc.
 * Feeds BENCH_RSS_SERIES (default 20,000) series into
 *   - the aggregator's windower (one open window per series, EVENTS_PER_SERIES events each, with
 *     a deployment id) and deduper (those events' IDs), as the live aggregator holds them;
 *   - the detector core (BENCH_RSS_WINDOWS, default 150, closed windows per series: its window
 *     rings full, baselines warm, as a series that has run for a few hours), configured as the
 *     service runs it: defaults.hot_endpoints endpoints in memory, the others in its scratch file;
 * and reports the RSS growth after a full GC, per series, for each and in total, with the V8 heap
 * and external (typed array) growth beside it, and their sum as the live bytes per series. RSS also
 * keeps pages that V8 and the allocator have not returned: `v8PagesPerSeries` is the growth of
 * resident 256 KiB anonymous mappings (V8's page size) beyond the heap V8 reports, read from
 * /proc/self/smaps.
 *
 * Diagnosis knobs: BENCH_RSS_DEBUG=1 (memory by mapping and V8 space at each step), BENCH_RSS_HOT
 * (endpoints the detector keeps in memory, instead of defaults.hot_endpoints), BENCH_RSS_LAST_RESORT=1 (each measure ends
 * with V8's last-resort GC, which also empties its page pool: not what a running service gets),
 * BENCH_RSS_IDLE=<ms> (the process idles that long before the detector's measure).
 */
import { createWindower, type WindowInput } from '../services/aggregator/windows.ts'
import { createDeduper } from '../services/aggregator/dedup.ts'
import { createDetectorCore } from '../services/detector/core/index.ts'
import { createFileCellStore } from '../services/detector/file-cell-store.ts'
import { REBUILD_CHUNK_WINDOWS } from '../services/detector/clickhouse-store.ts'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { detectorConfig } from '../services/detector/config.ts'
import { ConfigFileSchema } from '../shared/config.ts'
import type { WindowRecord } from '../schemas/window.ts'
import { readFileSync } from 'node:fs'
import { getHeapSpaceStatistics } from 'node:v8'
import { count, progress, report } from './lib/child.ts'
import { favorMemory } from '../shared/v8-memory.ts'

const P = 'rss'
const SERIES = Number(process.env.BENCH_RSS_SERIES ?? 20_000)
const EVENTS_PER_SERIES = 5
const WINDOWS_PER_SERIES = Number(process.env.BENCH_RSS_WINDOWS ?? 150)
const PARTITIONS = 3

export interface RssResult {
  series: number
  eventsPerSeries: number
  windowsPerSeries: number
  baselineRssBytes: number
  aggregator: { rssBytes: number; heapBytes: number; rssPerSeries: number; heapPerSeries: number; externalPerSeries: number; openWindows: number; dedupIds: number }
  detector: {
    rssBytes: number
    heapBytes: number
    rssPerSeries: number
    heapPerSeries: number
    externalPerSeries: number
    livePerSeries: number
    v8PagesPerSeries: number
    /** endpoint cells in memory and in the scratch file at the end, and the file's size per series */
    hotEndpoints: number
    coldEndpoints: number
    fileBytesPerSeries: number
    /** µs per window of a minute fed in time order: cold endpoints read back (this core) vs every endpoint in memory (a sample) */
    liveUsPerWindow: number
    hotUsPerWindow: number
  }
  total: { rssBytes: number; rssPerSeries: number; heapPerSeries: number; livePerSeries: number; runningRssPerSeries: number; peakRssPerSeries: number }
  /** V8 set to favor memory (shared/v8-memory.ts), as the stages run */
  v8FavorMemory: boolean
  /** the same at half the series (bench/run.ts runs both) */
  half?: RssResult
}

const gc = (globalThis as { gc?: () => void }).gc
if (!gc) throw new Error('run with --expose-gc')
const measure = () => {
  for (let i = 0; i < 3; i++) gc()
  if (process.env.BENCH_RSS_LAST_RESORT) (gc as unknown as (o: object) => void)({ type: 'major', execution: 'sync', flavor: 'last-resort' })
  const m = process.memoryUsage()
  if (process.env.BENCH_RSS_MSTATS) { process.kill(process.pid, 'SIGWINCH'); console.error('MU', JSON.stringify({rss: m.rss>>20, heapTotal: m.heapTotal>>20, heapUsed: m.heapUsed>>20, ext: m.external>>20, maps: rssByMapping(), spaces: Object.fromEntries(getHeapSpaceStatistics().filter(x=>x.space_size>0).map((x) => [x.space_name, [Math.round(x.space_size / 2 ** 20), Math.round(x.space_used_size / 2 ** 20)]]))})) }
  if (process.env.BENCH_RSS_DEBUG) console.error(JSON.stringify({ ...m, rollup: readFileSync('/proc/self/smaps_rollup', 'utf8').split('\n').filter((l) => /^(Rss|Anonymous|LazyFree|Private_Dirty|Private_Clean|Swap):/.test(l)).map((l) => l.replace(/\s+/g, ' ')), maps: rssByMapping(), spaces: Object.fromEntries(getHeapSpaceStatistics().map((x) => [x.space_name, [Math.round(x.space_size / 2 ** 20), Math.round(x.space_used_size / 2 ** 20)]])) }))
  return { rss: m.rss, heap: m.heapUsed, external: m.external, heapTotal: m.heapTotal, pages: residentV8Pages() }
}

/** Resident bytes by kind of mapping ("anon-256K rw-p": V8's heap pages), from /proc/self/smaps; null off Linux. */
function residentByMapping(): Record<string, number> | null {
  const out: Record<string, number> = {}
  try {
    for (const block of readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/)) {
      const head = block.split('\n')[0] ?? ''
      const [range, perms, , , inode, ...rest] = head.split(/\s+/)
      const [a, b] = (range ?? '0-0').split('-').map((x) => parseInt(x, 16))
      const size = (b ?? 0) - (a ?? 0)
      const name = rest.join(' ') || (inode === '0' ? (size === 256 * 1024 ? 'anon-256K' : size >= 64 * 2 ** 20 ? 'anon-64M+' : 'anon') : 'file')
      const rss = 1024 * Number(/\nRss: +(\d+) kB/.exec(block)?.[1] ?? 0)
      const k = `${name.startsWith('/') ? 'file' : name} ${perms}`
      out[k] = (out[k] ?? 0) + rss
    }
  } catch {
    return null
  }
  return out
}

/** Diagnosis (BENCH_RSS_DEBUG): resident MB by kind of mapping. */
function rssByMapping(): Record<string, number> {
  return Object.fromEntries(Object.entries(residentByMapping() ?? {}).map(([k, v]) => [k, Math.round(v / 2 ** 20)] as const).filter(([, v]) => v > 0))
}

/** The process's highest RSS so far (VmHWM), NaN off Linux. */
function peakRssBytes(): number {
  try {
    return 1024 * Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN)
  } catch {
    return NaN
  }
}

/** Resident bytes in 256 KiB anonymous read-write mappings (V8's heap pages, in use or pooled). */
function residentV8Pages(): number {
  const r = residentByMapping()
  return r ? (r['anon-256K rw-p'] ?? 0) : NaN
}

const file = ConfigFileSchema.parse({})
const windowMs = file.defaults.window
const t0 = Date.UTC(2026, 0, 5, 12)
const names = Array.from({ length: SERIES }, (_, i) => ({ team: `team-${i % 300}`, endpoint: `POST /v1/endpoint-${Math.floor(i / 300)}`, model: ['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku'][i % 3]! }))
// As a process running the detector has it (`burnwatch start`, where the aggregator shares the
// process, or `burnwatch detect`): V8 sizes the heap for memory unless BURNWATCH_V8_FAVOR_MEMORY=0
// (shared/v8-memory.ts, services/cli/stages.ts). The young generation is left as V8 sizes it:
// whatever it grows to while cold endpoints are read back counts in the detector's figure.
const favored = favorMemory(process.env.BURNWATCH_V8_FAVOR_MEMORY !== '0')
const base = measure()
progress(P, `baseline RSS ${(base.rss / 1e6).toFixed(0)} MB (V8 ${favored ? 'favoring memory' : 'defaults'}); feeding ${count(SERIES)} series`)

// --- aggregator state ------------------------------------------------------------------------------
const windower = createWindower({ windowMs, allowedLatenessMs: file.defaults.allowed_lateness, idleAdvance: true })
const deduper = createDeduper(file.defaults.dedup_horizon)
for (let k = 0; k < EVENTS_PER_SERIES; k++) {
  for (let i = 0; i < SERIES; i++) {
    const s = names[i]!
    const p = String(i % PARTITIONS)
    const ts = t0 + k * 10_000 + (i % 1000)
    const id = `${s.team}-svc-${k}-${i}-${k * SERIES + i}`
    const input: WindowInput = { team: s.team, endpoint: s.endpoint, model: s.model, ts, cost: 0.0012, input: 1200, output: 300, cacheRead: 0, cacheWrite: 0, costInput: 0.0006, costCacheRead: 0, costCacheWrite: 0, costOutput: 0.0006, error: false, unpriced: false, deployment: `${s.team}-svc-r1` }
    deduper.add(p, id, ts)
    windower.add(p, `${s.team}\u0000${s.endpoint}\u0000${s.model}`, input, 1)
  }
}
const afterAgg = measure()
const openWindows = windower.openWindows()
const dedupIds = deduper.size()
progress(P, `windower + deduper: ${count(openWindows)} open windows, ${count(dedupIds)} event IDs, +${((afterAgg.rss - base.rss) / 1e6).toFixed(0)} MB RSS`)

// --- detector core ----------------------------------------------------------------------------------
// As the service runs it: cold endpoints' state in the scratch-file cell store (defaults.hot_endpoints
// of them in memory). Fed in slices of REBUILD_CHUNK_WINDOWS minutes, endpoint by endpoint within
// a slice (the order of the detector's restart rebuild), so the feeding reads each cold endpoint
// back once per slice; the last minute is then fed in time order as live traffic arrives (every
// window of a cold endpoint read back and written again), and timed.
const detectorCfg = detectorConfig(file)
const cellDir = mkdtempSync(join(tmpdir(), 'bench-cells-'))
const cellStore = createFileCellStore(cellDir)
const core = createDetectorCore({ ...detectorCfg, cellStore, ...(process.env.BENCH_RSS_HOT ? { hotEndpoints: Number(process.env.BENCH_RSS_HOT) } : {}) })
const windowOf = (i: number, w: number): WindowRecord => {
  const s = names[i]!
  const requests = 20 + (i % 20)
  const cost = requests * 0.0012 * (1 + ((i * 7 + w) % 10) / 100)
  return {
    team: s.team,
    endpoint: s.endpoint,
    model: s.model,
    window_start: new Date(t0 + w * windowMs).toISOString(),
    window_end: new Date(t0 + (w + 1) * windowMs).toISOString(),
    requests,
    errors: 0,
    input_tokens: requests * 1200,
    output_tokens: requests * 300,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    cost_usd: cost,
    cost_sq_sum: (cost * cost) / requests,
    unpriced_requests: 0,
    late_events: 0,
    deployments: { [`${s.team}-svc-r1`]: requests },
  }
}
const FED = WINDOWS_PER_SERIES - 1
for (let w0 = 0; w0 < FED; w0 += REBUILD_CHUNK_WINDOWS) {
  for (let i = 0; i < SERIES; i++) for (let w = w0; w < Math.min(FED, w0 + REBUILD_CHUNK_WINDOWS); w++) core.onWindow(windowOf(i, w))
}
const live0 = performance.now()
for (let i = 0; i < SERIES; i++) core.onWindow(windowOf(i, FED))
const liveUs = ((performance.now() - live0) * 1000) / SERIES
if (process.env.BENCH_RSS_IDLE) await new Promise((r) => setTimeout(r, Number(process.env.BENCH_RSS_IDLE)))
// as it runs, before the measure's full GCs: RSS now, and the highest it has been (VmHWM)
const runningRss = process.memoryUsage().rss
const peakRss = peakRssBytes()
const afterDet = measure()
const cells = core.cellStats()
progress(P, `detector core: ${WINDOWS_PER_SERIES} windows per series, +${((afterDet.rss - afterAgg.rss) / 1e6).toFixed(0)} MB RSS; ${cells.hot} endpoints in memory, ${count(cells.cold)} in the scratch file (${(cellStore.size() / 1e6).toFixed(0)} MB)`)

// keep everything reachable until measured
if (windower.openWindows() !== openWindows || deduper.size() !== dedupIds || core.size().series !== SERIES) throw new Error('state lost')

// Side by side: the same last minute through a core holding every endpoint in memory (no cell
// store), on a sample of the series (all of them would need the ~2 GB this design avoids).
const SAMPLE = Math.min(SERIES, 2_000)
const hotCore = createDetectorCore(detectorCfg)
for (let w = 0; w < FED; w++) for (let i = 0; i < SAMPLE; i++) hotCore.onWindow(windowOf(i, w))
const hot0 = performance.now()
for (let i = 0; i < SAMPLE; i++) hotCore.onWindow(windowOf(i, FED))
const hotUs = ((performance.now() - hot0) * 1000) / SAMPLE
progress(P, `a live minute: ${liveUs.toFixed(1)} µs per window with cold endpoints read back from the file, ${hotUs.toFixed(1)} µs with every endpoint in memory`)
cellStore.close()
rmSync(cellDir, { recursive: true, force: true })

const per = (b: number) => Math.round(b / SERIES)
const result: RssResult = {
  series: SERIES,
  eventsPerSeries: EVENTS_PER_SERIES,
  windowsPerSeries: WINDOWS_PER_SERIES,
  baselineRssBytes: base.rss,
  aggregator: { rssBytes: afterAgg.rss - base.rss, heapBytes: afterAgg.heap - base.heap, rssPerSeries: per(afterAgg.rss - base.rss), heapPerSeries: per(afterAgg.heap - base.heap), externalPerSeries: per(afterAgg.external - base.external), openWindows, dedupIds },
  detector: {
    rssBytes: afterDet.rss - afterAgg.rss,
    heapBytes: afterDet.heap - afterAgg.heap,
    rssPerSeries: per(afterDet.rss - afterAgg.rss),
    heapPerSeries: per(afterDet.heap - afterAgg.heap),
    externalPerSeries: per(afterDet.external - afterAgg.external),
    livePerSeries: per(afterDet.heap - afterAgg.heap + afterDet.external - afterAgg.external),
    v8PagesPerSeries: per(afterDet.pages - afterAgg.pages - (afterDet.heapTotal - afterAgg.heapTotal)),
    hotEndpoints: cells.hot,
    coldEndpoints: cells.cold,
    fileBytesPerSeries: per(cellStore.size()),
    liveUsPerWindow: liveUs,
    hotUsPerWindow: hotUs,
  },
  total: { rssBytes: afterDet.rss - base.rss, rssPerSeries: per(afterDet.rss - base.rss), heapPerSeries: per(afterDet.heap - base.heap), livePerSeries: per(afterDet.heap - base.heap + afterDet.external - base.external), runningRssPerSeries: per(runningRss - base.rss), peakRssPerSeries: per(peakRss - base.rss) },
  v8FavorMemory: favored,
}
report(result)
