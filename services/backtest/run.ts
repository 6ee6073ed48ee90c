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
import { createPricer } from '../aggregator/pricing.ts'
import { createWindower, type WindowInput } from '../aggregator/windows.ts'
import { createDeduper } from '../aggregator/dedup.ts'
import { decodeUsageEvent, seriesId, windowInput } from '../aggregator/decode.ts'
import { partitionFor } from '../../shared/bus/partitioner.ts'
import { seriesKey } from '../../shared/producer/index.ts'
import { createDetectorCore } from '../detector/core/index.ts'
import { detectorConfig } from '../detector/config.ts'
import { readLineBatches } from './lines.ts'

export interface BacktestOptions {
  eventsPath: string
  alertsOut: string
  file: ConfigFile
  partitions?: number
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
  const pricer = createPricer(o.file)
  const windower = createWindower({ windowMs: defaults.window, allowedLatenessMs: defaults.allowed_lateness, idleAdvance: false })
  const deduper = createDeduper(defaults.dedup_horizon)
  const core = createDetectorCore(detectorConfig(o.file))
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

  // series → its partition, as Kafka's default partitioner would place the series key
  const partitionOf = new Map<string, string>()
  const now = Date.now()
  const scratch = {} as WindowInput
  for await (const lines of readLineBatches(o.eventsPath, (n) => (bytes += n))) {
    for (const line of lines) {
      s.lines++
      if (line.length === 0 || !line.trim()) continue
      const dec = decodeUsageEvent(line, false, now)
      if (!dec.ok) {
        s.invalid++
        s.firstError ??= `line ${s.lines}: ${dec.reason}`
        continue
      }
      const e = dec.event
      const series = seriesId(e)
      let p = partitionOf.get(series)
      if (p === undefined) partitionOf.set(series, (p = String(partitionFor(seriesKey(e), partitions, 0))))
      if (deduper.has(p, e.event_id)) {
        s.duplicates++
        continue
      }
      deduper.add(p, e.event_id, dec.ts)
      s.events++
      if (!windower.add(p, series, windowInput(e, dec.ts, pricer.price(e), scratch), 0)) s.late++
      const closed = windower.advance(p, 0)
      if (closed.length) {
        s.windows += closed.length
        for (const w of closed) await write(core.onWindow(w))
      }
    }
    o.onProgress?.(bytes, total, s.events)
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
