/**
 * Backtest decode worker: the stateless half of the per-event work (JSON.parse, validation,
 * pricing, the series' Kafka partition), for batches of lines in file order. It answers with
 * typed arrays (transferred, not copied) and interns series and deployment IDs, so the main
 * thread only deduplicates, windows and detects, in file order, exactly as before.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { decodeUsageEvent } from '../aggregator/decode.ts'
import { createPricer } from '../aggregator/pricing.ts'
import { seriesId } from '../../schemas/series.ts'
import { partitionFor } from '../../shared/bus/partitioner.ts'
import { seriesKey } from '../../shared/producer/index.ts'
import type { ConfigFile } from '../../shared/config.ts'
import { FIELDS, type DecodeRequest, type DecodeResult, type NewSeries } from './decoded.ts'

const { file, partitions, now } = workerData as { file: ConfigFile; partitions: number; now: number }
const pricer = createPricer(file)
const seriesIdx = new Map<string, number>()
const depIdx = new Map<string, number>()

parentPort!.on('message', (req: DecodeRequest) => {
  const lines = req.text.split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const n = lines.length
  const nums = new Float64Array(n * FIELDS)
  const series = new Int32Array(n)
  const deps = new Int32Array(n)
  const ids: string[] = []
  const newSeries: NewSeries[] = []
  const newDeps: string[] = []
  let invalid = 0
  let firstError: DecodeResult['firstError'] = null
  let k = 0
  for (let i = 0; i < n; i++) {
    const line = lines[i]!
    if (line.length === 0 || !line.trim()) continue
    const dec = decodeUsageEvent(line, false, now)
    if (!dec.ok) {
      invalid++
      firstError ??= { index: i, reason: dec.reason }
      continue
    }
    const e = dec.event
    const sid = seriesId(e)
    let si = seriesIdx.get(sid)
    if (si === undefined) {
      seriesIdx.set(sid, (si = seriesIdx.size))
      newSeries.push({ id: sid, team: e.team, endpoint: e.endpoint, model: e.model, partition: String(partitionFor(seriesKey(e), partitions, 0)) })
    }
    let di = -1
    if (e.deployment_id) {
      const known = depIdx.get(e.deployment_id)
      if (known === undefined) {
        depIdx.set(e.deployment_id, (di = depIdx.size))
        newDeps.push(e.deployment_id)
      } else di = known
    }
    const priced = pricer.price(e)
    const o = k * FIELDS
    nums[o] = dec.ts
    nums[o + 1] = priced.cost
    nums[o + 2] = e.input_tokens
    nums[o + 3] = e.output_tokens
    nums[o + 4] = e.cache_read_tokens ?? 0
    nums[o + 5] = e.cache_write_tokens ?? 0
    nums[o + 6] = (e.status === 'error' ? 1 : 0) | (priced.source === 'unpriced' ? 2 : 0)
    series[k] = si
    deps[k] = di
    ids.push(e.event_id)
    k++
  }
  const res: DecodeResult = { seq: req.seq, lines: n, count: k, nums, series, deps, ids, newSeries, newDeps, invalid, firstError }
  parentPort!.postMessage(res, [nums.buffer, series.buffer, deps.buffer])
})
