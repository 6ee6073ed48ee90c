/**
 * The aggregator: usage.events → usage_events (+ cost_windows and rollups by materialized views)
 * in ClickHouse, closed windows → cost.windows, bad records → the dead-letter topic.
 *
 * Exactly-once totals in ClickHouse. Each stored row carries its Kafka (topic, partition,
 * offset); the highest stored offset per partition is the checkpoint (table usage_offsets,
 * maintained by a materialized view in the same INSERT). Per batch of one partition:
 *   1. records at or below the checkpoint are skipped: they are already stored (a redelivery
 *      after a crash between the insert and the offset commit);
 *   2. bad records go to the dead-letter topic (acks=all) with the reason;
 *   3. the new rows are inserted in one INSERT with a deduplication token derived from the
 *      offsets, so a retried INSERT of the same batch is dropped by ClickHouse;
 *   4. only then does in-memory state change (dedup set, windows, checkpoint), so a failed
 *      insert leaves nothing half-applied and the retried batch is processed afresh;
 *   5. closed windows are published to cost.windows from an outbox that survives a failed send;
 *   6. the handler returns and the bus commits the offsets (write, then commit).
 * After a restart or rebalance the checkpoint, the dedup set (event IDs of the dedup horizon)
 * and the open windows (events since the watermark) are rebuilt from usage_events, so totals
 * are neither short nor doubled. Windows re-closed after a crash may be published twice;
 * the detector ignores a window it has already seen.
 */
import type { Bus, BusBatch, BusConsumer, BusMessage, BusProducer, OutgoingMessage } from '../../shared/bus/port.ts'
import { sendAll } from '../../shared/producer/records.ts'
import type { AppConfig } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import { counter, gauge, histogram, type Registry } from '../../shared/metrics.ts'
import { DeploymentMarker } from '../../schemas/deployment.ts'
import { describeIssues } from '../../schemas/issues.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import { DEFAULT_ENVIRONMENT } from '../../schemas/usage-event.ts'
import { createPricer } from './pricing.ts'
import { createWindower, type WindowInput } from './windows.ts'
import { createDeduper, IdTable, idFingerprint } from './dedup.ts'
import { decodeUsageEvent, seriesId } from './decode.ts'
import { seriesKey } from '../../shared/producer/index.ts'
import { decimalText, type ClickHouseUsageStore, type UsageRow } from './clickhouse-store.ts'

export interface AggregatorDeps {
  bus: Bus
  store: ClickHouseUsageStore
  config: AppConfig
  logger: Logger
  registry: Registry
  groupId?: string
  /** wall clock, for idle watermark advance */
  now?: () => number
  /**
   * Repair the rollups before consuming (reconcile.ts). Only where this process is the only
   * writer, i.e. on chDB; on a shared server a concurrent INSERT would be counted twice.
   */
  repairRollups?: () => Promise<Record<string, number>>
}

export interface Aggregator {
  start(): Promise<void>
  stop(): Promise<void>
  /** stats for tests and benchmarks */
  stats(): { stored: number; duplicates: number; deadLettered: number; late: number; windowsPublished: number; skippedStored: number }
}

/** A dead letter's value is cut to this many bytes so that, with its headers, it always fits a Kafka request. */
export const MAX_DEAD_LETTER_VALUE_BYTES = 512 * 1024

/** The dead-letter record of a bad input record: its value (cut when huge) and why it was refused. */
export function deadLetter(msg: BusMessage, reason: string): OutgoingMessage {
  const headers: Record<string, string> = { reason: reason.slice(0, 2000), source_topic: msg.topic, source_partition: String(msg.partition), source_offset: msg.offset }
  const bytes = Buffer.byteLength(msg.value)
  if (bytes <= MAX_DEAD_LETTER_VALUE_BYTES) return { key: msg.key, value: msg.value, headers }
  headers.value_truncated_from_bytes = String(bytes)
  return { key: msg.key, value: Buffer.from(msg.value).subarray(0, MAX_DEAD_LETTER_VALUE_BYTES).toString(), headers }
}

/** The windower's view of a stored row, written into `into` (the windower copies what it keeps). */
function rowInput(r: UsageRow, cost: number, into: WindowInput): WindowInput {
  into.team = r.team
  into.endpoint = r.endpoint
  into.model = r.model
  into.ts = r.timestamp
  into.cost = cost
  into.input = r.input_tokens
  into.output = r.output_tokens
  into.cacheRead = r.cache_read_tokens
  into.cacheWrite = r.cache_write_tokens
  into.error = r.status === 'error'
  into.unpriced = r.unpriced
  into.deployment = r.deployment_id || undefined
  into.environment = r.environment
  return into
}

interface PartitionCtx {
  key: string
  checkpoint: number
  outbox: WindowRecord[]
}

export function createAggregator(d: AggregatorDeps): Aggregator {
  const log = d.logger.child({ component: 'aggregator' })
  const now = d.now ?? Date.now
  const topics = d.config.kafka.topics
  const defaults = d.config.file.defaults
  const groupId = d.groupId ?? 'burnwatch-aggregator'
  const pricer = createPricer(d.config.file)
  const windower = createWindower({ windowMs: defaults.window, allowedLatenessMs: defaults.allowed_lateness, idleAdvance: true })
  const deduper = createDeduper(defaults.dedup_horizon)
  const parts = new Map<string, PartitionCtx>()
  const loading = new Map<string, Promise<PartitionCtx>>()

  const m = {
    consumed: counter(d.registry, 'burnwatch_aggregator_records_total', 'usage.events records consumed by outcome', ['outcome']),
    insertSeconds: histogram(d.registry, 'burnwatch_clickhouse_insert_seconds', 'ClickHouse insert latency', ['table'], [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    lag: gauge(d.registry, 'burnwatch_consumer_lag', 'records behind the end of the partition', ['group', 'topic', 'partition']),
    closeDelay: histogram(d.registry, 'burnwatch_window_close_delay_seconds', 'wall time from window end to its close', [], [1, 5, 15, 30, 45, 60, 120, 300]),
    windows: counter(d.registry, 'burnwatch_windows_published_total', 'closed windows published to cost.windows'),
  }
  const stats = { stored: 0, duplicates: 0, deadLettered: 0, late: 0, windowsPublished: 0, skippedStored: 0 }

  let consumer: BusConsumer | null = null
  let deployConsumer: BusConsumer | null = null
  let producer: BusProducer | null = null
  let timer: NodeJS.Timeout | null = null
  let stopped = false

  /** Loads the checkpoint and rebuilds the partition's dedup set and open windows. */
  const partition = (topic: string, p: number): Promise<PartitionCtx> => {
    const key = `${topic}/${p}`
    const ready = parts.get(key)
    if (ready) return Promise.resolve(ready)
    let l = loading.get(key)
    if (!l) {
      l = (async () => {
        const cp = await d.store.checkpoint(topic, p)
        windower.drop(key)
        deduper.drop(key)
        if (cp.maxTimestamp !== null) {
          const ids = await d.store.eventsSince(topic, p, cp.maxTimestamp - defaults.dedup_horizon, 'ids')
          for (const r of ids) deduper.add(key, r.event_id, r.ts)
          const since = cp.maxTimestamp - defaults.allowed_lateness - 2 * defaults.window
          const rows = await d.store.eventsSince(topic, p, since - (since % defaults.window), 'full')
          // wall time now: a partition that stays quiet after the restart still closes these by idle advance
          const wall = now()
          for (const r of rows) windower.add(key, seriesId(r), { ...r, deployment: r.deployment || undefined }, wall)
          log.info({ topic, partition: p, checkpoint: cp.maxOffset, dedupIds: ids.length, reopened: rows.length }, 'partition state rebuilt from ClickHouse')
        }
        const ctx: PartitionCtx = { key, checkpoint: cp.maxOffset, outbox: [] }
        parts.set(key, ctx)
        loading.delete(key)
        return ctx
      })()
      l.catch(() => loading.delete(key))
      loading.set(key, l)
    }
    return l
  }

  const publish = async (ctx: PartitionCtx) => {
    if (!ctx.outbox.length || !producer) return
    const batch = ctx.outbox.slice()
    await producer.send(
      topics.windows,
      batch.map((w) => ({ key: seriesKey(w), value: JSON.stringify(w) })),
    )
    ctx.outbox.splice(0, batch.length)
    stats.windowsPublished += batch.length
    m.windows.inc(batch.length)
    const wall = now()
    for (const w of batch) m.closeDelay.observe(Math.max(0, (wall - Date.parse(w.window_end)) / 1000))
  }

  const handle = async (batch: BusBatch) => {
    const ctx = await partition(batch.topic, batch.partition)
    const rows: UsageRow[] = []
    const dead: OutgoingMessage[] = []
    // per stored row: its ID's fingerprint, its series and its cost as a number (parallel arrays, no object per event)
    const fingerprints: number[] = []
    const seriesOf: string[] = []
    const costs: number[] = []
    const inBatch = new IdTable()
    let duplicates = 0
    let skipped = 0
    let maxTs = -Infinity
    for (const msg of batch.messages) {
      const offset = Number(msg.offset)
      // 1. already stored before a crash: skip
      if (offset <= ctx.checkpoint) {
        skipped++
        continue
      }
      const dec = decodeUsageEvent(msg.value, false)
      if (!dec.ok) {
        dead.push(deadLetter(msg, dec.reason))
        continue
      }
      const e = dec.event
      const fp = idFingerprint(e.event_id)
      if (deduper.has(ctx.key, e.event_id, fp) || inBatch.has(fp, e.event_id)) {
        duplicates++
        continue
      }
      inBatch.add(fp, e.event_id)
      const ts = dec.ts
      const priced = pricer.price(e)
      const series = seriesId(e)
      // the same watermark progression windower.add will follow below, event by event
      if (ts > maxTs) maxTs = ts
      const late = windower.isLate(ctx.key, ts, maxTs)
      const row: UsageRow = {
        event_id: e.event_id,
        timestamp: ts,
        team: e.team,
        endpoint: e.endpoint,
        model: e.model,
        provider: e.provider ?? '',
        service: e.service ?? '',
        deployment_id: e.deployment_id ?? '',
        input_tokens: e.input_tokens,
        output_tokens: e.output_tokens,
        cache_read_tokens: e.cache_read_tokens ?? 0,
        cache_write_tokens: e.cache_write_tokens ?? 0,
        reasoning_tokens: e.reasoning_tokens ?? 0,
        environment: e.environment ?? DEFAULT_ENVIRONMENT,
        batch: e.batch ?? false,
        cost_usd: decimalText(priced.cost),
        cost_source: priced.source,
        unpriced: priced.source === 'unpriced',
        gpu_seconds: e.gpu_seconds ?? 0,
        latency_ms: e.latency_ms ?? 0,
        status: e.status ?? 'ok',
        attributes: e.attributes ?? {},
        late,
        kafka_topic: msg.topic,
        kafka_partition: msg.partition,
        kafka_offset: offset,
      }
      rows.push(row)
      fingerprints.push(fp)
      seriesOf.push(series)
      // the stored (decimal) cost, so the windows add up to what ClickHouse sums
      costs.push(Number(row.cost_usd))
    }
    // 2. dead letters first: once the offsets are committed they must be somewhere
    // in broker-sized requests: several large bad records must not make one send the broker refuses forever
    if (dead.length && producer) await sendAll(producer, topics.deadLetter, dead)
    // 3. one INSERT, idempotent on retry
    const first = batch.messages[0]!.offset
    const last = batch.messages[batch.messages.length - 1]!.offset
    const t0 = performance.now()
    await d.store.insertEvents(rows, `${batch.topic}:${batch.partition}:${first}-${last}`)
    m.insertSeconds.observe({ table: 'usage_events' }, (performance.now() - t0) / 1000)
    // 4. in-memory state only after the write is durable
    const wall = now()
    const input = {} as WindowInput
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!
      deduper.add(ctx.key, r.event_id, r.timestamp, fingerprints[i])
      // a late event is not added to a window but counted in the series' next one
      if (!windower.add(ctx.key, seriesOf[i]!, rowInput(r, costs[i]!, input), wall)) stats.late++
    }
    ctx.checkpoint = Math.max(ctx.checkpoint, Number(last))
    stats.stored += rows.length
    stats.duplicates += duplicates
    stats.deadLettered += dead.length
    stats.skippedStored += skipped
    m.consumed.inc({ outcome: 'stored' }, rows.length)
    if (duplicates) m.consumed.inc({ outcome: 'duplicate' }, duplicates)
    if (dead.length) m.consumed.inc({ outcome: 'dead_letter' }, dead.length)
    if (batch.lag !== null) m.lag.set({ group: groupId, topic: batch.topic, partition: String(batch.partition) }, batch.lag)
    // 5. closed windows out through the outbox
    ctx.outbox.push(...windower.advance(ctx.key, wall))
    await publish(ctx)
    // 6. return: the bus commits the offsets
  }

  const tick = async () => {
    // live mode: idle partitions close their windows by wall time
    const closed = new Map<string, WindowRecord[]>()
    for (const ctx of parts.values()) {
      const w = windower.advance(ctx.key, now())
      if (w.length) closed.set(ctx.key, w)
    }
    for (const [key, w] of closed) {
      const ctx = parts.get(key)!
      ctx.outbox.push(...w)
    }
    for (const ctx of parts.values()) await publish(ctx)
  }

  const handleDeployments = async (batch: BusBatch) => {
    const good = []
    for (const msg of batch.messages) {
      let raw: unknown
      try {
        raw = JSON.parse(msg.value)
      } catch {
        log.warn({ offset: msg.offset }, 'deployment marker is not JSON; skipped')
        continue
      }
      const r = DeploymentMarker.safeParse(raw)
      if (r.success) good.push(r.data)
      else log.warn({ offset: msg.offset, reason: describeIssues(r.error) }, 'invalid deployment marker skipped')
    }
    await d.store.insertDeployments(good)
  }

  return {
    async start() {
      if (d.repairRollups) {
        const repaired = await d.repairRollups()
        if (Object.values(repaired).some((n) => n > 0)) log.warn({ repaired }, 'rollups were short after an interrupted insert (a crash); repaired from usage_events')
      }
      await d.bus.ensureTopics([{ topic: topics.events }, { topic: topics.windows }, { topic: topics.deadLetter }, { topic: topics.deployments }])
      producer = await d.bus.producer()
      consumer = d.bus.consumer({ groupId, topics: [topics.events], fromBeginning: true, maxBatchMessages: 50_000 })
      consumer.onAssign((assigned) => {
        // a partition that moved away is forgotten; if it comes back, its state is rebuilt from ClickHouse
        const keep = new Set(assigned.flatMap((a) => a.partitions.map((p) => `${a.topic}/${p}`)))
        for (const key of [...parts.keys()]) {
          if (!keep.has(key)) {
            parts.delete(key)
            windower.drop(key)
            deduper.drop(key)
          }
        }
      })
      await consumer.start(handle)
      deployConsumer = d.bus.consumer({ groupId: `${groupId}-deployments`, topics: [topics.deployments], fromBeginning: true })
      await deployConsumer.start(handleDeployments)
      timer = setInterval(() => {
        tick().catch((err: unknown) => log.warn({ err }, 'publishing idle windows failed; will retry'))
      }, 1000)
      timer.unref()
      log.info({ groupId, topic: topics.events }, 'aggregator started')
    },
    async stop() {
      if (stopped) return
      stopped = true
      if (timer) clearInterval(timer)
      await consumer?.stop()
      await deployConsumer?.stop()
      await tick().catch((err: unknown) => log.warn({ err }, 'could not publish the last windows'))
      await producer?.stop()
      log.info(stats, 'aggregator stopped')
    },
    stats: () => ({ ...stats }),
  }
}
