/**
 * The aggregator: usage.events → usage_events (+ cost_windows and rollups by materialized views)
 * in ClickHouse, closed windows → cost.windows, bad records → the dead-letter topic. Its batch
 * loop is the stage runner's (shared/stage/runner.ts); this file is the plan of a batch.
 *
 * Exactly-once totals in ClickHouse. Each stored row carries its Kafka (topic, partition,
 * offset); the highest stored offset per partition is the checkpoint (table usage_offsets,
 * maintained by a materialized view in the same INSERT). Per batch of one partition:
 *   1. records at or below the checkpoint are skipped: they are already stored (a redelivery
 *      after a crash between the insert and the offset commit);
 *   2. bad records, and events older than usage_events keeps, go to the dead-letter topic
 *      (acks=all) with the reason; records that arrived on another partition than their series'
 *      (an outside producer with no key, another key or another partitioner) are re-keyed onto
 *      their series' partition of usage.events, where they are stored once (event_id dedup), so
 *      every series is whole on one partition whatever the producer did; both before step 3,
 *      since the checkpoint would skip them on a redelivery once a later record is stored;
 *   3. store: the new rows are inserted with a deduplication token derived from the offsets (one
 *      INSERT per at most MAX_PARTITIONS_PER_INSERT months), so a retried INSERT is dropped;
 *   4. (nothing to publish before the state change: windows close in it)
 *   5. apply: only then does in-memory state change (dedup set, windows, checkpoint), so a failed
 *      insert leaves nothing half-applied and the retried batch is planned afresh;
 *   6. flush: closed windows are published to cost.windows from an outbox that survives a failed send;
 *   7. the runner returns and the bus commits the offsets (write, then commit).
 * After a restart or rebalance the checkpoint, the dedup set (event IDs of the dedup horizon)
 * and the open windows (events since the watermark) are rebuilt from usage_events, so totals
 * are neither short nor doubled. Windows re-closed after a crash may be published twice;
 * the detector ignores a window it has already seen.
 */
import type { Bus, BusBatch, BusConsumer, BusProducer, OutgoingMessage } from '../../shared/bus/port.ts'
import { partitionFor } from '../../shared/bus/partitioner.ts'
import type { AppConfig } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import { counter, gauge, histogram, type Registry } from '../../shared/metrics.ts'
import { createStageRunner, type StagePlan, type StageRunner } from '../../shared/stage/runner.ts'
import { DeploymentMarker } from '../../schemas/deployment.ts'
import { describeIssues } from '../../schemas/issues.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import { DEFAULT_ENVIRONMENT, isRetry } from '../../schemas/usage-event.ts'
import { createPricer } from './pricing.ts'
import { createWindower, type WindowInput } from './windows.ts'
import { createDeduper, IdTable, idFingerprint } from './dedup.ts'
import { decodeUsageEvent, seriesId } from './decode.ts'
import { seriesKey } from '../../shared/producer/index.ts'
import { createSeriesGate } from '../../shared/series-caps.ts'
import { decimalText, RAW_RETENTION_MS, type ClickHouseUsageStore, type UsageRow } from './clickhouse-store.ts'

/** Header of a record the aggregator re-keyed onto its series' partition (never re-keyed twice). */
export const REKEYED_HEADER = 'burnwatch-rekeyed'

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
  into.costInput = r.cost_input_usd
  into.costCacheRead = r.cost_cache_read_usd
  into.costCacheWrite = r.cost_cache_write_usd
  into.costOutput = r.cost_output_usd
  into.error = r.status === 'error'
  into.retry = r.retry
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
  const gate = createSeriesGate({ perTeam: defaults.max_series_per_team, total: defaults.max_series, idleMs: defaults.series_idle })
  const parts = new Map<string, PartitionCtx>()
  const loading = new Map<string, Promise<PartitionCtx>>()

  const m = {
    consumed: counter(d.registry, 'burnwatch_aggregator_records_total', 'usage.events records consumed by outcome', ['outcome']),
    insertSeconds: histogram(d.registry, 'burnwatch_clickhouse_insert_seconds', 'ClickHouse insert latency', ['table'], [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]),
    insertFailures: counter(d.registry, 'burnwatch_clickhouse_insert_failures_total', 'ClickHouse inserts that failed', ['table']),
    closeDelay: histogram(d.registry, 'burnwatch_window_close_delay_seconds', 'wall time from window end to its close', [], [1, 5, 15, 30, 45, 60, 120, 300]),
    windows: counter(d.registry, 'burnwatch_windows_published_total', 'closed windows published to cost.windows'),
    late: counter(d.registry, 'burnwatch_late_events_total', 'events stored after their window closed (counted in the series next window)'),
    activeSeries: gauge(d.registry, 'burnwatch_active_series', 'series with their own live windows (within the caps)'),
    overflow: counter(d.registry, 'burnwatch_series_overflow_events_total', 'events counted in an overflow series because a series cap was reached', ['cap']),
    watermarkLead: gauge(d.registry, 'burnwatch_watermark_lead_seconds', 'how far the newest event time seen runs ahead of the wall clock (clamped: it never moves the watermark past now)', ['topic', 'partition']),
  }
  const stats = { stored: 0, duplicates: 0, deadLettered: 0, late: 0, windowsPublished: 0, skippedStored: 0 }

  let runner: StageRunner | null = null
  let deployConsumer: BusConsumer | null = null
  let producer: BusProducer | null = null
  let timer: NodeJS.Timeout | null = null
  let stopped = false
  let eventPartitions = 0
  let lastEviction = now()
  let overflowed = { team_cap: 0, total_cap: 0, teams: new Set<string>() }

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
          // event time as the live watermark saw it: never past the wall clock (one fast clock must not hide the open windows)
          const since = Math.min(cp.maxTimestamp, now()) - defaults.allowed_lateness - 2 * defaults.window
          const rows = await d.store.eventsSince(topic, p, since - (since % defaults.window), 'full')
          // wall time now: a partition that stays quiet after the restart still closes these by idle advance
          const wall = now()
          const input = {} as WindowInput
          for (const r of rows) {
            const id = seriesId(r)
            const overflow = gate.admit(r.team, id, wall)
            const w = Object.assign(input, r, { deployment: r.deployment || undefined }, overflow ?? {})
            // an overflow series is per team within the event's environment
            windower.add(key, overflow ? seriesId({ ...overflow, environment: w.environment }) : id, w, wall)
          }
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

  /** Plans a batch of one partition (runner steps 1–6); changes no state until `apply`. */
  const plan = async (batch: BusBatch): Promise<StagePlan> => {
    const ctx = await partition(batch.topic, batch.partition)
    const rows: UsageRow[] = []
    const deadLetters: NonNullable<StagePlan['deadLetters']> = []
    const rekeyed: OutgoingMessage[] = []
    // per stored row: its ID's fingerprint, its series and its cost as a number (parallel arrays, no object per event)
    const fingerprints: number[] = []
    const seriesOf: string[] = []
    const costs: number[] = []
    const inBatch = new IdTable()
    let duplicates = 0
    let skipped = 0
    let maxTs = -Infinity
    let lead = 0
    const wall = now()
    const oldest = wall - RAW_RETENTION_MS
    // partitions of usage.events as the producers see them (0 in-process before any send: no re-keying)
    const partitions = batch.topic === topics.events ? eventPartitions : 0
    for (const msg of batch.messages) {
      const offset = Number(msg.offset)
      // 1. already stored before a crash: skip
      if (offset <= ctx.checkpoint) {
        skipped++
        continue
      }
      const dec = decodeUsageEvent(msg.value, false)
      if (!dec.ok) {
        deadLetters.push({ message: msg, reason: dec.reason })
        continue
      }
      const e = dec.event
      const ts = dec.ts
      // 2. older than the raw table keeps: its TTL would drop the row on insert, so it is refused here, with the reason
      if (ts < oldest) {
        deadLetters.push({ message: msg, reason: `event time ${new Date(ts).toISOString()} is older than usage_events keeps (${RAW_RETENTION_MS / 86_400_000} days); backfill old history with \`burnwatch backtest\`` })
        continue
      }
      // 2. on another partition than its series' (outside producer): re-keyed onto the right one, stored there
      const key = seriesKey(e)
      if (partitions > 1 && msg.headers[REKEYED_HEADER] === undefined && partitionFor(key, partitions, 0) !== msg.partition) {
        rekeyed.push({ key, value: msg.value, headers: { ...msg.headers, [REKEYED_HEADER]: `${msg.partition}:${msg.offset}` } })
        continue
      }
      const fp = idFingerprint(e.event_id)
      if (deduper.has(ctx.key, e.event_id, fp) || inBatch.has(fp, e.event_id)) {
        duplicates++
        continue
      }
      inBatch.add(fp, e.event_id)
      const priced = pricer.price(e)
      const series = seriesId(e)
      // the same watermark progression windower.add will follow below, event by event (event time clamped to the wall clock)
      const clamped = ts < wall ? ts : wall
      if (clamped > maxTs) maxTs = clamped
      if (ts - wall > lead) lead = ts - wall
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
        cost_input_usd: priced.input,
        cost_cache_read_usd: priced.cacheRead,
        cost_cache_write_usd: priced.cacheWrite,
        cost_output_usd: priced.output,
        retry: isRetry(e.attributes),
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
    const first = batch.messages[0]!.offset
    const last = batch.messages[batch.messages.length - 1]!.offset
    return {
      deadLetters,
      // 3. idempotent on retry
      store: async () => {
        const t0 = performance.now()
        try {
          await d.store.insertEvents(rows, `${batch.topic}:${batch.partition}:${first}-${last}`)
        } catch (err) {
          m.insertFailures.inc({ table: 'usage_events' })
          throw err
        }
        m.insertSeconds.observe({ table: 'usage_events' }, (performance.now() - t0) / 1000)
      },
      // before the store: once a later record of the batch is stored, the checkpoint would skip these on redelivery
      forward: rekeyed.length ? [{ topic: topics.events, messages: rekeyed }] : [],
      // 5. in-memory state only after the write is durable
      apply: () => {
        const wall = now()
        const input = {} as WindowInput
        let late = 0
        for (let i = 0; i < rows.length; i++) {
          const r = rows[i]!
          deduper.add(ctx.key, r.event_id, r.timestamp, fingerprints[i])
          const w = rowInput(r, costs[i]!, input)
          let series = seriesOf[i]!
          const overflow = gate.admit(r.team, series, wall)
          if (overflow) {
            Object.assign(w, overflow)
            series = seriesId({ ...overflow, environment: w.environment })
          }
          // a late event is not added to a window but counted in the series' next one
          if (!windower.add(ctx.key, series, w, wall)) late++
        }
        ctx.checkpoint = Math.max(ctx.checkpoint, Number(last))
        stats.late += late
        if (late) m.late.inc(late)
        stats.stored += rows.length
        stats.duplicates += duplicates
        stats.deadLettered += deadLetters.length
        stats.skippedStored += skipped
        m.consumed.inc({ outcome: 'stored' }, rows.length)
        if (duplicates) m.consumed.inc({ outcome: 'duplicate' }, duplicates)
        if (deadLetters.length) m.consumed.inc({ outcome: 'dead_letter' }, deadLetters.length)
        if (rekeyed.length) m.consumed.inc({ outcome: 'rekeyed' }, rekeyed.length)
        m.watermarkLead.set({ topic: batch.topic, partition: String(batch.partition) }, lead / 1000)
        ctx.outbox.push(...windower.advance(ctx.key, wall))
      },
      // 6. closed windows out through the outbox
      flush: () => publish(ctx),
    }
  }

  const tick = async () => {
    // live mode: idle partitions close their windows by wall time, but not while a batch of theirs is in flight
    // (during a ClickHouse outage its events would otherwise all become late)
    const wall = now()
    for (const ctx of parts.values()) {
      if (runner?.inFlight(ctx.key)) continue
      const w = windower.advance(ctx.key, wall)
      if (w.length) ctx.outbox.push(...w)
    }
    const o = gate.takeOverflow()
    if (o.team_cap) m.overflow.inc({ cap: 'team' }, o.team_cap)
    if (o.total_cap) m.overflow.inc({ cap: 'total' }, o.total_cap)
    overflowed.team_cap += o.team_cap
    overflowed.total_cap += o.total_cap
    for (const t of o.teams) if (overflowed.teams.size < 100) overflowed.teams.add(t)
    if (wall - lastEviction >= 60_000) {
      lastEviction = wall
      const evicted = gate.evictIdle(wall)
      if (evicted) log.debug({ evicted }, 'idle series left the windower')
      // logged once a minute, whatever the flood
      if (overflowed.team_cap || overflowed.total_cap) log.warn({ ...overflowed, teams: [...overflowed.teams], max_series_per_team: defaults.max_series_per_team, max_series: defaults.max_series }, 'series caps reached: events of new series were counted in overflow series in the last minute (raw events are stored with their names)')
      overflowed = { team_cap: 0, total_cap: 0, teams: new Set() }
    }
    m.activeSeries.set(gate.active())
    for (const ctx of parts.values()) await publish(ctx)
  }

  /** A partition that moved away is forgotten; if it comes back, its state is rebuilt from ClickHouse. */
  const forget = (assigned: { topic: string; partitions: number[] }[]) => {
    const keep = new Set(assigned.flatMap((a) => a.partitions.map((p) => `${a.topic}/${p}`)))
    for (const key of [...parts.keys()]) {
      if (!keep.has(key)) {
        parts.delete(key)
        windower.drop(key)
        deduper.drop(key)
      }
    }
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
      eventPartitions = await d.bus.partitions(topics.events)
      producer = await d.bus.producer()
      runner = createStageRunner({ stage: 'aggregator', bus: d.bus, groupId, topics: [topics.events], deadLetterTopic: topics.deadLetter, fromBeginning: true, maxBatchMessages: 50_000, logger: d.logger, registry: d.registry, plan, onAssign: forget })
      await runner.start()
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
      await runner?.stop()
      await deployConsumer?.stop()
      await tick().catch((err: unknown) => log.warn({ err }, 'could not publish the last windows'))
      await producer?.stop()
      log.info(stats, 'aggregator stopped')
    },
    stats: () => ({ ...stats }),
  }
}
