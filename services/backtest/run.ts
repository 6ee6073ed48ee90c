/**
 * `burnwatch backtest`: the aggregator's windowing and the detector's core over recorded events,
 * in event time only, as fast as the machine allows; no Kafka, ClickHouse or Slack.
 *
 * To give the same alerts as a live run of the same events, it mirrors the live pipeline: each
 * event goes to the partition Kafka would choose for its series key (murmur2, as kafkajs), each
 * partition has its own watermark, duplicates count once per partition, and closed windows reach
 * the detector core in the order the aggregator would publish them.
 */
import { createWriteStream, statSync } from 'node:fs'
import { once } from 'node:events'
import type { ConfigFile } from '../../shared/config.ts'
import type { AlertRecord } from '../../schemas/alert.ts'
import { createWindower, type WindowInput } from '../aggregator/windows.ts'
import { createDeduper } from '../aggregator/dedup.ts'
import { Worker } from 'node:worker_threads'
import { availableParallelism } from 'node:os'
import { FIELDS, type DecodeResult, type NewSeries, type WorkerDone, type WorkerSetup } from './decoded.ts'
import { createEnvironmentDetectorCore } from '../detector/environments.ts'
import { detectorConfig } from '../detector/config.ts'

export interface BacktestOptions {
  eventsPath: string
  alertsOut: string
  file: ConfigFile
  partitions?: number
  /** decode worker threads (default: one per core, 2 to 4) */
  workers?: number
  onProgress?: (bytesRead: number, totalBytes: number, events: number) => void
}

export interface BacktestSummary {
  lines: number
  events: number
  invalid: number
  duplicates: number
  late: number
  windows: number
  alerts: number
  byStatus: Record<string, number>
  firstError: string | null
  seconds: number
  eventsPerSecond: number
}

export async function runBacktest(o: BacktestOptions): Promise<BacktestSummary> {
  const t0 = performance.now()
  const defaults = o.file.defaults
  const partitions = o.partitions ?? 3
  const windower = createWindower({ windowMs: defaults.window, allowedLatenessMs: defaults.allowed_lateness, idleAdvance: false })
  const deduper = createDeduper(defaults.dedup_horizon)
  const core = createEnvironmentDetectorCore(detectorConfig(o.file), o.file)
  const out = createWriteStream(o.alertsOut)
  const total = statSync(o.eventsPath).size
  const s: BacktestSummary = { lines: 0, events: 0, invalid: 0, duplicates: 0, late: 0, windows: 0, alerts: 0, byStatus: {}, firstError: null, seconds: 0, eventsPerSecond: 0 }
  let bytes = 0
  let buffered = ''

  const write = async (alerts: AlertRecord[]) => {
    for (const a of alerts) {
      buffered += JSON.stringify(a) + '\n'
      s.alerts++
      s.byStatus[a.status] = (s.byStatus[a.status] ?? 0) + 1
    }
    if (buffered.length > 1 << 16) {
      if (!out.write(buffered)) await once(out, 'drain')
      buffered = ''
    }
  }

  // Reading and decoding (parse, validate, price) run in worker threads, each on every
  // `count`-th segment of the file; the main thread applies the segments in file order, so
  // dedup, windows and detection see the events exactly as a single-threaded loop would.
  // one decode worker per core (at least 2: the main thread and a worker overlap even on one core), at most 4
  const count = Math.max(1, o.workers ?? Math.min(4, Math.max(2, availableParallelism())))
  const progress = new SharedArrayBuffer(4)
  const applied = new Int32Array(progress)
  Atomics.store(applied, 0, -1)
  const now = Date.now()
  const workers = Array.from({ length: count }, (_, index) => new Worker(new URL('./decode-worker.ts', import.meta.url), { workerData: { eventsPath: o.eventsPath, index, count, partitions, now, progress, file: o.file } satisfies WorkerSetup & { file: ConfigFile } }))
  const tables = workers.map(() => ({ series: [] as NewSeries[], deps: [] as string[] }))
  const ready = new Map<number, DecodeResult>()
  let segments = Infinity
  let failure: unknown = null
  let wake: (() => void) | null = null
  const notify = () => {
    const w = wake
    wake = null
    w?.()
  }
  for (const w of workers) {
    w.on('message', (m: DecodeResult | WorkerDone) => {
      if (m.kind === 'done') segments = m.segments
      else ready.set(m.seq, m)
      notify()
    })
    w.on('error', (err) => {
      failure = err
      notify()
    })
  }

  const scratch = {} as WindowInput
  const apply = async (r: DecodeResult) => {
    const t = tables[r.seq % count]!
    t.series.push(...r.newSeries)
    t.deps.push(...r.newDeps)
    if (r.firstError) s.firstError ??= `line ${s.lines + r.firstError.index + 1}: ${r.firstError.reason}`
    s.lines += r.lines
    s.invalid += r.invalid
    bytes += r.bytes
    for (let k = 0; k < r.count; k++) {
      const ser = t.series[r.series[k]!]!
      const id = r.idText.slice(k === 0 ? 0 : r.idEnds[k - 1]!, r.idEnds[k]!)
      const f = k * FIELDS
      const ts = r.nums[f]!
      if (!deduper.addIfNew(ser.partition, id, ts, r.fingerprints[k]!)) {
        s.duplicates++
        continue
      }
      s.events++
      scratch.team = ser.team
      scratch.endpoint = ser.endpoint
      scratch.model = ser.model
      scratch.environment = ser.environment
      scratch.ts = ts
      scratch.cost = r.nums[f + 1]!
      scratch.input = r.nums[f + 2]!
      scratch.output = r.nums[f + 3]!
      scratch.cacheRead = r.nums[f + 4]!
      scratch.cacheWrite = r.nums[f + 5]!
      scratch.error = (r.nums[f + 6]! & 1) !== 0
      scratch.unpriced = (r.nums[f + 6]! & 2) !== 0
      scratch.retry = (r.nums[f + 6]! & 4) !== 0
      scratch.costInput = r.nums[f + 7]!
      scratch.costCacheRead = r.nums[f + 8]!
      scratch.costCacheWrite = r.nums[f + 9]!
      scratch.costOutput = r.nums[f + 10]!
      scratch.deployment = r.deps[k]! >= 0 ? t.deps[r.deps[k]!] : undefined
      if (!windower.add(ser.partition, ser.id, scratch, 0)) s.late++
      const closed = windower.advance(ser.partition, 0)
      if (closed.length) {
        s.windows += closed.length
        for (const w of closed) await write(core.onWindow(w))
      }
    }
  }

  try {
    for (let seq = 0; seq < segments; seq++) {
      let r = ready.get(seq)
      while (!r) {
        if (failure !== null) throw failure
        if (seq >= segments) break
        await new Promise<void>((resolve) => (wake = resolve))
        r = ready.get(seq)
      }
      if (!r) break
      ready.delete(seq)
      await apply(r)
      Atomics.store(applied, 0, seq)
      Atomics.notify(applied, 0)
      o.onProgress?.(bytes, total, s.events)
    }
  } finally {
    await Promise.all(workers.map((w) => w.terminate()))
  }
  const rest = windower.flush()
  s.windows += rest.length
  for (const w of rest) await write(core.onWindow(w))
  await write(core.flush())
  out.end(buffered)
  await once(out, 'finish')
  o.onProgress?.(total, total, s.events)
  s.seconds = (performance.now() - t0) / 1000
  s.eventsPerSecond = s.events / Math.max(s.seconds, 1e-9)
  return s
}
