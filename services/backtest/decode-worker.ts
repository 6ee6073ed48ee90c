/**
 * Backtest decode worker: the stateless half of the per-event work (reading, JSON.parse,
 * validation, pricing, the series' Kafka partition). Every worker reads the whole file and cuts
 * it into the same segments (at the last newline of each 1 MiB read; a newline byte never
 * occurs inside a UTF-8 character), and decodes only the segments numbered `index` modulo
 * `count`. Results go back as typed arrays (transferred, not copied) with series and deployment
 * IDs interned, so the main thread only deduplicates, windows and detects, in file order.
 */
import { createReadStream } from 'node:fs'
import { parentPort, workerData } from 'node:worker_threads'
import { decodeUsageEvent } from '../aggregator/decode.ts'
import { createPricer } from '../aggregator/pricing.ts'
import { idFingerprint } from '../aggregator/dedup.ts'
import { seriesId } from '../../schemas/series.ts'
import { isRetry } from '../../schemas/usage-event.ts'
import { partitionFor } from '../../shared/bus/partitioner.ts'
import { seriesKey } from '../../shared/producer/series-key.ts'
import type { ConfigFile } from '../../shared/config.ts'
import { FIELDS, MAX_AHEAD, type DecodeResult, type NewSeries, type WorkerDone, type WorkerSetup } from './decoded.ts'

const setup = workerData as WorkerSetup & { file: ConfigFile }
const pricer = createPricer(setup.file)
const progress = new Int32Array(setup.progress)
// team → endpoint → model → series index: nested maps, no per-event key string
/** environment → team → endpoint → model → series index */
const seriesIdx = new Map<string, Map<string, Map<string, Map<string, number>>>>()
let seriesCount = 0
const depIdx = new Map<string, number>()

function decodeSegment(seq: number, buf: Buffer): DecodeResult {
  const lines = buf.toString('utf8').split('\n')
  if (lines[lines.length - 1] === '') lines.pop()
  const n = lines.length
  const nums = new Float64Array(n * FIELDS)
  const series = new Int32Array(n)
  const deps = new Int32Array(n)
  const fingerprints = new Int32Array(n)
  const idEnds = new Int32Array(n)
  let idText = ''
  const newSeries: NewSeries[] = []
  const newDeps: string[] = []
  let invalid = 0
  let firstError: DecodeResult['firstError'] = null
  let k = 0
  for (let i = 0; i < n; i++) {
    const line = lines[i]!
    if (line.length === 0 || !line.trim()) continue
    const dec = decodeUsageEvent(line, false, setup.now)
    if (!dec.ok) {
      invalid++
      firstError ??= { index: i, reason: dec.reason }
      continue
    }
    const e = dec.event
    const environment = e.environment ?? 'production'
    let byTeam = seriesIdx.get(environment)
    if (!byTeam) seriesIdx.set(environment, (byTeam = new Map()))
    let byEndpoint = byTeam.get(e.team)
    if (!byEndpoint) byTeam.set(e.team, (byEndpoint = new Map()))
    let byModel = byEndpoint.get(e.endpoint)
    if (!byModel) byEndpoint.set(e.endpoint, (byModel = new Map()))
    let si = byModel.get(e.model)
    if (si === undefined) {
      byModel.set(e.model, (si = seriesCount++))
      newSeries.push({ id: seriesId(e), team: e.team, endpoint: e.endpoint, model: e.model, environment, partition: String(partitionFor(seriesKey(e), setup.partitions, 0)) })
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
    nums[o + 6] = (e.status === 'error' ? 1 : 0) | (priced.source === 'unpriced' ? 2 : 0) | (isRetry(e.attributes) ? 4 : 0)
    nums[o + 7] = priced.input
    nums[o + 8] = priced.cacheRead
    nums[o + 9] = priced.cacheWrite
    nums[o + 10] = priced.output
    series[k] = si
    deps[k] = di
    idText += e.event_id
    idEnds[k] = idText.length
    fingerprints[k] = idFingerprint(e.event_id)
    k++
  }
  return { kind: 'segment', seq, bytes: buf.length, lines: n, count: k, nums, series, deps, idText, idEnds, fingerprints, newSeries, newDeps, invalid, firstError }
}

let rest: Buffer = Buffer.alloc(0)
let seq = 0
const mine = (s: number) => s % setup.count === setup.index
/** Segment `seq` is `head` + `body`; only this worker's segments are copied and decoded. */
const emit = (head: Buffer, body: Buffer) => {
  const s = seq++
  if (!mine(s)) return
  // wait while too far ahead of the main thread (bounded memory)
  while (s - Atomics.load(progress, 0) > MAX_AHEAD) Atomics.wait(progress, 0, Atomics.load(progress, 0), 50)
  const r = decodeSegment(s, head.length ? Buffer.concat([head, body]) : body)
  parentPort!.postMessage(r, [r.nums.buffer, r.series.buffer, r.deps.buffer, r.fingerprints.buffer, r.idEnds.buffer])
}
for await (const chunk of createReadStream(setup.eventsPath, { highWaterMark: 1 << 20 })) {
  const buf = chunk as Buffer
  const cut = buf.lastIndexOf(10) + 1
  if (cut === 0) {
    rest = Buffer.concat([rest, buf])
    if (rest.length > 64 << 20) throw new Error('a line longer than 64 MiB: is this NDJSON?')
    continue
  }
  emit(rest, buf.subarray(0, cut))
  rest = Buffer.from(buf.subarray(cut))
}
if (rest.length) emit(Buffer.alloc(0), rest)
parentPort!.postMessage({ kind: 'done', segments: seq } satisfies WorkerDone)
