/** What the Kafka bench parts share: realistic events into a fresh topic, and the bare consumer that is the ceiling. */
import type { Kafka } from 'kafkajs'
import { seriesKey } from '../../shared/producer/index.ts'
import { generateTraffic } from '../../services/demo/traffic.ts'
import { benchSeries, loadTrace } from './traffic.ts'
import { progress } from './child.ts'

/** N realistic events over `series` series: an hour of event time from 12:00 UTC yesterday (the same traffic shape in every run). */
export function benchRecords(part: string, n: number, series: number): { records: { key: string; value: string }[]; bytes: number } {
  const trace = loadTrace()
  progress(part, `generating ${n.toLocaleString('en')} events over ${series} series (${trace.source})`)
  const records: { key: string; value: string }[] = []
  let bytes = 0
  const day = 86_400_000
  const start = Math.floor(Date.now() / day) * day - day + 12 * 3_600_000
  for (const e of generateTraffic({ start, minutes: 60, series: benchSeries(series, n / series / 25), pairs: trace.pairs, seed: 7 })) {
    const value = JSON.stringify(e)
    bytes += value.length
    records.push({ key: seriesKey(e), value })
    if (records.length >= n) break
  }
  if (records.length < n) throw new Error(`generated only ${records.length} events`)
  return { records, bytes }
}

/** Creates `topic` and fills it (acks=all, record batches under the broker's 1 MB limit, a few requests in flight); returns seconds. */
export async function fillTopic(part: string, kafka: Kafka, topic: string, partitions: number, records: { key: string; value: string }[]): Promise<number> {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true })
  await admin.disconnect()
  const producer = kafka.producer({ allowAutoTopicCreation: false })
  await producer.connect()
  const t0 = performance.now()
  const CHUNK = 6000
  const inFlight = new Set<Promise<unknown>>()
  let lastFill = performance.now()
  for (let i = 0; i < records.length; i += CHUNK) {
    const p = producer.send({ topic, acks: -1, messages: records.slice(i, i + CHUNK) })
    inFlight.add(p)
    void p.finally(() => inFlight.delete(p)).catch(() => {})
    if (inFlight.size >= 4) await Promise.race(inFlight)
    if (performance.now() - lastFill > 3000) {
      lastFill = performance.now()
      progress(part, `filled ${(i + CHUNK).toLocaleString('en')}`)
    }
  }
  await Promise.all(inFlight)
  await producer.disconnect()
  return (performance.now() - t0) / 1000
}

export const BARE = { maxWaitTimeInMs: 50, minBytes: 1, maxBytesPerPartition: 16 * 1024 * 1024, maxBytes: 64 * 1024 * 1024, partitionsConsumedConcurrently: 3 }

/** A bare kafkajs eachBatch consumer that only counts, from its group join to the n-th record; returns seconds. */
export async function drainBare(kafka: Kafka, topic: string, n: number, groupId: string): Promise<number> {
  const c = kafka.consumer({ groupId, maxWaitTimeInMs: BARE.maxWaitTimeInMs, minBytes: BARE.minBytes, maxBytesPerPartition: BARE.maxBytesPerPartition, maxBytes: BARE.maxBytes })
  await c.connect()
  await c.subscribe({ topic, fromBeginning: true })
  let count = 0
  let first = 0
  c.on(c.events.GROUP_JOIN, () => {
    first ||= performance.now()
  })
  let resolveDone!: (t: number) => void
  const done = new Promise<number>((r) => (resolveDone = r))
  await c.run({
    partitionsConsumedConcurrently: BARE.partitionsConsumedConcurrently,
    eachBatch: async ({ batch }) => {
      count += batch.messages.length
      if (count >= n) resolveDone(performance.now())
    },
  })
  const last = await done
  await c.disconnect()
  return (last - first) / 1000
}
