/**
 * Bench part 1: pipeline drain throughput. Fills a fresh 3-partition topic with realistic usage
 * events keyed by series, then drains it twice from the beginning, each in a fresh consumer group:
 *   (a) a bare kafkajs eachBatch consumer that only counts (tuned: small maxWaitTimeInMs, large
 *       fetch sizes, partitionsConsumedConcurrently 3), the ceiling of this client on this broker;
 *   (b) the aggregator (createAggregator on createKafkaBus + chDB store), until every record is
 *       stored in ClickHouse usage_events and its offset committed.
 * Rates are measured from the consumer's group join (when fetching starts) to the last record
 * counted (a) or stored (b), so the join itself is excluded from both alike. Env: KAFKA_BROKERS (required), BENCH_EVENTS,
 * BENCH_SERIES.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { createRequire } from 'node:module'
import { setTimeout as sleep } from 'node:timers/promises'
import { Kafka, logLevel } from 'kafkajs'
import { loadConfig } from '../shared/config.ts'
import { createLogger } from '../shared/logger.ts'
import { createKafkaBus } from '../shared/bus/kafka.ts'
import type { Bus, BusConsumer, ConsumerOptions } from '../shared/bus/port.ts'
import { openClickHouse } from '../shared/clickhouse/client.ts'
import { migrate } from '../shared/clickhouse/migrate.ts'
import { createRegistry } from '../shared/metrics.ts'
import { createAggregator } from '../services/aggregator/service.ts'
import { createClickHouseUsageStore, encodeUsageRows, type ClickHouseUsageStore } from '../services/aggregator/clickhouse-store.ts'
import { BARE, benchRecords, drainBare, fillTopic } from './lib/kafka.ts'
import { progress, report } from './lib/child.ts'

const P = 'drain'
const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean)
if (!brokers.length) throw new Error('KAFKA_BROKERS is required')
const N = Number(process.env.BENCH_EVENTS ?? 500_000)
const SERIES = Number(process.env.BENCH_SERIES ?? 3000)
const PARTITIONS = 3

export interface DrainResult {
  events: number
  series: number
  bytes: number
  avgEventBytes: number
  fillSeconds: number
  bare: { seconds: number; eventsPerSecond: number }
  aggregator: { seconds: number; eventsPerSecond: number; toCommittedSeconds: number; batches: number; avgBatch: number; insertSeconds: number; windowsPublished: number; storedInClickHouse: number; cpu: { processSeconds: number; machineBusy: number } }
  ratio: number
  /** diagnosis: the aggregator with ClickHouse writes skipped */
  withoutClickHouse: { seconds: number; eventsPerSecond: number; ratio: number; cpu: { processSeconds: number; machineBusy: number } }
  settings: Record<string, unknown>
  engine: { clickhouse: string; chdbPackage: string }
}

/** Busy and idle jiffies of all cores since boot (Linux), null elsewhere. */
function machineTicks(): { idle: number; total: number } | null {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.split(/\s+/).slice(1).map(Number)
    return { idle: f[3]! + f[4]!, total: f.reduce((a, b) => a + b, 0) }
  } catch {
    return null
  }
}

const hex = randomBytes(4).toString('hex')
const dataDir = mkdtempSync(join(tmpdir(), 'bw-bench-drain-'))
const config = loadConfig({
  KAFKA_BROKERS: brokers.join(','),
  KAFKA_TOPIC_PREFIX: `bench${hex}.`,
  BURNWATCH_DATA_DIR: dataDir,
  CLICKHOUSE_DATABASE: 'bench_drain',
  LOG_LEVEL: 'warn',
})
const topic = config.kafka.topics.events
const logger = createLogger({ level: 'warn' })
const kafka = new Kafka({ clientId: 'bench', brokers, logLevel: logLevel.NOTHING })

// --- the events, the fill, (a) the bare kafkajs consumer --------------------------------------
const { records, bytes } = benchRecords(P, N, SERIES)
const fillSeconds = await fillTopic(P, kafka, topic, PARTITIONS, records)
progress(P, `topic ${topic}: ${N.toLocaleString('en')} events, ${(bytes / 1e6).toFixed(0)} MB of JSON, filled in ${fillSeconds.toFixed(1)} s`)
records.length = 0
progress(P, 'draining with a bare kafkajs batch consumer')
const bareSeconds = await drainBare(kafka, topic, N, `bench-bare-${hex}`)
progress(P, `bare: ${(N / bareSeconds).toFixed(0)} events/s (${bareSeconds.toFixed(2)} s)`)

// --- (b) the aggregator ------------------------------------------------------------------------
const ch = await openClickHouse(config.clickhouse)
await migrate(ch.client)
const store = createClickHouseUsageStore(ch.client, { stagingDir: ch.stagingDir })
let insertMs = 0
const timedStore: typeof store = {
  ...store,
  async insertEvents(rows, token) {
    const t = performance.now()
    await store.insertEvents(rows, token)
    insertMs += performance.now() - t
  },
}
interface AggregatorRun {
  seconds: number
  toCommittedSeconds: number
  batches: number
  handled: number
  windowsPublished: number
  stored: number
  cpu: { processSeconds: number; machineBusy: number }
}

/** Drains the topic from the beginning with the aggregator in a fresh consumer group, writing through `via`. */
async function drainAggregator(via: ClickHouseUsageStore, label: string): Promise<AggregatorRun> {
  const bus = createKafkaBus({ brokers, clientId: `bench-${label}`, logger })
  // observe the aggregator's usage.events consumer: group joined, records handled
  let first = 0
  let handled = 0
  let batches = 0
  let last = 0
  const observed: Bus = {
    ...bus,
    kind: bus.kind,
    consumer(o: ConsumerOptions): BusConsumer {
      const c = bus.consumer(o)
      if (!o.topics.includes(topic)) return c
      return {
        ...c,
        start: async (handler) => {
          // resolves when the consumer joined its group; fetching starts right then
          await c.start(async (batch, ctx) => {
            await handler(batch, ctx)
            handled += batch.messages.length
            batches++
            if (handled >= N && !last) last = performance.now()
          })
          first ||= performance.now()
        },
      }
    },
  }
  const group = `bench-${label}-${hex}`
  const agg = createAggregator({ bus: observed, store: via, config, logger, registry: createRegistry(), groupId: group })
  const cpu0 = process.cpuUsage()
  const machine0 = machineTicks()
  await agg.start()
  let lastReport = performance.now()
  while (!last) {
    await sleep(5)
    if (performance.now() - lastReport > 5000) {
      lastReport = performance.now()
      progress(P, `${label}: ${handled.toLocaleString('en')} / ${N.toLocaleString('en')} handled`)
    }
  }
  const c = process.cpuUsage(cpu0)
  const m = machineTicks()
  const cpu = { processSeconds: (c.user + c.system) / 1e6, machineBusy: m && machine0 ? 1 - (m.idle - machine0.idle) / Math.max(1, m.total - machine0.total) : NaN }
  // committed: the group's lag reaches 0 (commits follow each stored batch)
  while ((await bus.lag(group, topic)) > 0) await sleep(5)
  const toCommittedSeconds = (performance.now() - first) / 1000
  const stats = agg.stats()
  await agg.stop()
  await bus.stop()
  return { seconds: (last - first) / 1000, toCommittedSeconds, batches, handled, windowsPublished: stats.windowsPublished, stored: stats.stored, cpu }
}

progress(P, 'draining with the aggregator (Kafka → chDB usage_events, windows → cost.windows)')
const run = await drainAggregator(timedStore, 'aggregator')
const rs = await ch.client.query({ query: 'SELECT count() AS n, version() AS v FROM usage_events', format: 'JSONEachRow' })
const [counted] = await rs.json<{ n: number | string; v: string }>()
const storedInClickHouse = Number(counted!.n)
if (run.stored !== N || storedInClickHouse !== N) throw new Error(`aggregator stored ${run.stored} (ClickHouse has ${storedInClickHouse}), expected ${N}`)
progress(P, `CPU while the aggregator drained: this process ${run.cpu.processSeconds.toFixed(1)} s (aggregator, kafkajs, chDB); all cores ${(100 * run.cpu.machineBusy).toFixed(0)}% busy`)
progress(P, `aggregator: ${(N / run.seconds).toFixed(0)} events/s (${run.seconds.toFixed(2)} s; ${run.batches} batches; ClickHouse inserts ${(insertMs / 1000).toFixed(2)} s; ${run.windowsPublished} windows published)`)

// (c) a diagnosis, not a product mode: the same aggregator with ClickHouse taken out (rows still
// encoded, never inserted; nothing to rebuild), the ceiling of the JavaScript side on this machine
progress(P, 'draining with the aggregator, ClickHouse writes skipped (the ceiling of everything else)')
const noClickHouse: ClickHouseUsageStore = {
  ...store,
  insertEvents: async (rows) => void encodeUsageRows(rows),
  checkpoint: async () => ({ maxOffset: -1, maxTimestamp: null }),
  eventsSince: async () => [],
}
const ceiling = await drainAggregator(noClickHouse, 'aggregator-no-clickhouse')
progress(P, `aggregator without ClickHouse: ${(N / ceiling.seconds).toFixed(0)} events/s (${ceiling.seconds.toFixed(2)} s; CPU ${ceiling.cpu.processSeconds.toFixed(1)} s, all cores ${(100 * ceiling.cpu.machineBusy).toFixed(0)}% busy)`)
await ch.close()

try {
  rmSync(dataDir, { recursive: true, force: true })
} catch {
  /* best effort */
}

const result: DrainResult = {
  events: N,
  series: SERIES,
  bytes,
  avgEventBytes: Math.round(bytes / N),
  fillSeconds,
  bare: { seconds: bareSeconds, eventsPerSecond: N / bareSeconds },
  aggregator: {
    seconds: run.seconds,
    eventsPerSecond: N / run.seconds,
    toCommittedSeconds: run.toCommittedSeconds,
    batches: run.batches,
    avgBatch: Math.round(run.handled / Math.max(1, run.batches)),
    insertSeconds: insertMs / 1000,
    windowsPublished: run.windowsPublished,
    storedInClickHouse,
    cpu: run.cpu,
  },
  ratio: run.seconds > 0 ? bareSeconds / run.seconds : 0,
  withoutClickHouse: { seconds: ceiling.seconds, eventsPerSecond: N / ceiling.seconds, ratio: ceiling.seconds > 0 ? bareSeconds / ceiling.seconds : 0, cpu: ceiling.cpu },
  settings: { partitions: PARTITIONS, bare: BARE },
  engine: { clickhouse: `chDB (ClickHouse ${counted!.v})`, chdbPackage: (createRequire(import.meta.url)('chdb/package.json') as { version: string }).version },
}
report(result)
