/**
 * The detector service: cost.windows → pure detection core → cost.alerts and the `alerts` table.
 * Its batch loop is the stage runner's (shared/stage/runner.ts); this file plans a batch.
 *
 * Per batch of windows (runner steps):
 *   plan: the core turns windows into alert state changes (deterministic alert_id). The core has
 *      no snapshot, so its state moves here; the state changes go into the partition's outbox,
 *      which only a successful publish empties: a failed publish is retried with the same batch,
 *      whose windows the core now ignores as seen, and the outbox still holds their pages;
 *   publish: the outbox's state changes go to cost.alerts (acks=all), keyed by team so one
 *      team's changes stay in order;
 *   apply: they are known (never published again) and leave the outbox;
 *   flush: then they are recorded in the `alerts` table (retried on its own: a refusing table
 *      holds the commit back, it never loses a page);
 *   then the bus commits the windows' offsets.
 * A crash between publish and flush publishes a state change again after the restart; the
 * notifier delivers each (alert_id, status) once, so nobody is paged twice. An invalid window
 * record goes to the dead-letter topic with its reason.
 *
 * Restart: the core has no snapshot; the service replays the recent history of cost_windows and
 * deployments from ClickHouse through a fresh core (`historyMs`, default 26 h, enough for the
 * daily traffic profile). State changes already in `alerts` are not published again; those
 * missing (the detector was down or crashed before step 3) are published when still recent
 * (`recoverMs`, default 1 h); older ones are history.
 */
import type { Bus, BusBatch, BusConsumer, BusProducer } from '../../shared/bus/port.ts'
import { createStageRunner, type StagePlan, type StageRunner } from '../../shared/stage/runner.ts'
import type { AppConfig } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import { counter, gauge, type Registry } from '../../shared/metrics.ts'
import { WindowRecord } from '../../schemas/window.ts'
import { DeploymentMarker } from '../../schemas/deployment.ts'
import { describeIssues } from '../../schemas/issues.ts'
import type { AlertRecord } from '../../schemas/alert.ts'
import type { DetectorCore } from './core/index.ts'
import { createEnvironmentDetectorCore } from './environments.ts'
import { createSeriesGate } from '../../shared/series-caps.ts'
import { seriesId } from '../../schemas/series.ts'
import { detectorConfig } from './config.ts'
import { createFileCellStore, type FileCellStore } from './file-cell-store.ts'
import { join } from 'node:path'
import { retrying } from '../../shared/retry.ts'
import type { ClickHouseAlertStore } from './clickhouse-store.ts'

export interface DetectorDeps {
  bus: Bus
  store: ClickHouseAlertStore
  config: AppConfig
  logger: Logger
  registry: Registry
  now?: () => number
  historyMs?: number
  recoverMs?: number
}

export interface DetectorService {
  start(): Promise<void>
  stop(): Promise<void>
  stats(): { windows: number; alerts: number; invalid: number; replayedWindows: number }
}

const keyOf = (a: AlertRecord) => `${a.alert_id}/${a.status}`

export function createDetector(d: DetectorDeps): DetectorService {
  const log = d.logger.child({ component: 'detector' })
  const now = d.now ?? Date.now
  const topics = d.config.kafka.topics
  const historyMs = d.historyMs ?? 26 * 3_600_000
  const recoverMs = d.recoverMs ?? 3_600_000
  const stats = { windows: 0, alerts: 0, invalid: 0, replayedWindows: 0 }
  const m = {
    alerts: counter(d.registry, 'burnwatch_alerts_total', 'alert state changes published', ['status', 'signal']),
    windows: counter(d.registry, 'burnwatch_detector_windows_total', 'windows consumed by the detector'),
    lastWindow: gauge(d.registry, 'burnwatch_detector_event_time_seconds', 'event time of the latest window seen by the detector'),
    keys: gauge(d.registry, 'burnwatch_detector_keys', 'keys the detector holds state for (series idle for 8 days of event time leave)', ['kind']),
    cells: gauge(d.registry, 'burnwatch_detector_endpoint_cells', 'endpoints whose detector state is in memory (defaults.hot_endpoints) or waits in the scratch file', ['where']),
    cellReads: counter(d.registry, 'burnwatch_detector_cell_reads_total', 'endpoint states read back from the scratch file (one per window of a cold endpoint: raise defaults.hot_endpoints when this rate costs too much CPU)'),
  }
  let core: DetectorCore | null = null
  let cellReadsSeen = 0
  const setKeys = (): void => {
    if (!core) return
    const n = core.size()
    m.keys.set({ kind: 'series' }, n.series)
    m.keys.set({ kind: 'endpoint' }, n.endpoints)
    m.keys.set({ kind: 'team' }, n.teams)
    const cs = core.cellStats()
    m.cells.set({ where: 'memory' }, cs.hot)
    m.cells.set({ where: 'file' }, cs.cold)
    m.cellReads.inc(cs.reads - cellReadsSeen)
    cellReadsSeen = cs.reads
  }
  let known = new Set<string>()
  let producer: BusProducer | null = null
  let runner: StageRunner | null = null
  /** per partition: state changes made by the core and not yet published */
  const outbox = new Map<string, AlertRecord[]>()
  let deployConsumer: BusConsumer | null = null
  let stopped = false
  const stopSignal = new AbortController()
  // the core is not re-entrant: batches of different partitions run one at a time
  let chain: Promise<unknown> = Promise.resolve()
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const p = chain.then(fn)
    chain = p.catch(() => {})
    return p
  }

  const emit = async (alerts: AlertRecord[]) => {
    const fresh = alerts.filter((a) => !known.has(keyOf(a)))
    if (!fresh.length) return
    // retried while the failure is retriable: a restart during a ClickHouse outage or while the
    // alerts table refuses writes waits for them instead of exiting (drill `alerts-refusal`)
    const retry = (what: string, fn: () => Promise<void>) =>
      retrying(fn, {
        signal: stopSignal.signal,
        onFailedAttempt: (err, attempt, willRetry) => {
          if (willRetry) log.warn({ err, attempt, alerts: fresh.length }, `${what} of the recovered state changes failed; retrying`)
        },
      })
    await retry('publishing', () => producer!.send(topics.alerts, fresh.map((a) => ({ key: a.team, value: JSON.stringify(a) }))))
    await retry('recording', () => d.store.insertAlerts(fresh))
    for (const a of fresh) {
      known.add(keyOf(a))
      m.alerts.inc({ status: a.status, signal: a.signal })
    }
    stats.alerts += fresh.length
    log.info({ alerts: fresh.map((a) => ({ id: a.alert_id, status: a.status, team: a.team, endpoint: a.endpoint, signal: a.signal, change_pct: Math.round(a.change_pct) })) }, 'alert state changes')
  }

  // cold endpoints' state waits as bytes in a scratch file (core/cells.ts); a restart rebuilds it
  let cellStore: FileCellStore | null = null
  const rebuild = async () => {
    cellStore?.close()
    cellStore = createFileCellStore(join(d.config.dataDir, 'detector'))
    const c = createEnvironmentDetectorCore({ ...detectorConfig(d.config.file), cellStore }, d.config.file)
    const until = now()
    const since = until - historyMs
    known = await d.store.knownAlerts(since - historyMs)
    const markers = await d.store.deploymentsSince(since - 3_600_000)
    // the same caps as the aggregator's: a restart must not bring back more series than the live path keeps
    const defaults = d.config.file.defaults
    const gate = createSeriesGate({ perTeam: defaults.max_series_per_team, total: defaults.max_series, idleMs: Infinity })
    let mi = 0
    let windows = 0
    let beyondCaps = 0
    const recovered: AlertRecord[] = []
    // streamed: 26 h of windows are replayed as they arrive, never held at once
    for await (const w of d.store.streamWindowsSince(since, until, defaults.window)) {
      if (gate.admit(w.team, seriesId(w), 0)) {
        beyondCaps++
        continue
      }
      windows++
      const t = Date.parse(w.window_start)
      while (mi < markers.length && Date.parse(markers[mi]!.timestamp) <= t) c.onDeployment(markers[mi++]!)
      for (const a of c.onWindow(w)) {
        if (!known.has(keyOf(a)) && Date.parse(a.detected_at) >= until - recoverMs) recovered.push(a)
      }
    }
    while (mi < markers.length) c.onDeployment(markers[mi++]!)
    stats.replayedWindows = windows
    core = c
    cellReadsSeen = c.cellStats().reads
    if (windows) log.info({ windows, markers: markers.length, recovered: recovered.length }, 'detector state rebuilt from ClickHouse history')
    if (beyondCaps) log.warn({ windows: beyondCaps, max_series_per_team: defaults.max_series_per_team, max_series: defaults.max_series }, 'windows of series beyond the series caps were not replayed')
    return recovered
  }

  /** Plans a batch of windows: the core's state changes join the partition's outbox (see above). */
  const plan = (batch: BusBatch): Promise<StagePlan> =>
    serial(async () => {
      const key = `${batch.topic}/${batch.partition}`
      const deadLetters: NonNullable<StagePlan['deadLetters']> = []
      let pending = outbox.get(key)
      if (!pending) outbox.set(key, (pending = []))
      for (const msg of batch.messages) {
        let raw: unknown
        try {
          raw = JSON.parse(msg.value)
        } catch (err) {
          stats.invalid++
          deadLetters.push({ message: msg, reason: `cost.windows record is not JSON: ${(err as Error).message}` })
          continue
        }
        const r = WindowRecord.safeParse(raw)
        if (!r.success) {
          stats.invalid++
          deadLetters.push({ message: msg, reason: `invalid window record: ${describeIssues(r.error)}` })
          continue
        }
        pending.push(...core!.onWindow(r.data))
        stats.windows++
        m.windows.inc()
        m.lastWindow.set(Date.parse(r.data.window_end) / 1000)
        if (stats.windows % 1000 === 0) setKeys()
      }
      const fresh = pending.filter((a) => !known.has(keyOf(a)))
      const out = fresh.slice()
      return {
        deadLetters,
        publish: [{ topic: topics.alerts, messages: out.map((a) => ({ key: a.team, value: JSON.stringify(a) })) }],
        apply: () => {
          for (const a of out) {
            known.add(keyOf(a))
            m.alerts.inc({ status: a.status, signal: a.signal })
          }
          pending.splice(0, pending.length)
          stats.alerts += out.length
          if (out.length) log.info({ alerts: out.map((a) => ({ id: a.alert_id, status: a.status, team: a.team, endpoint: a.endpoint, signal: a.signal, change_pct: Math.round(a.change_pct) })) }, 'alert state changes')
        },
        flush: () => d.store.insertAlerts(out),
      }
    })

  const handleDeployments = (batch: BusBatch) =>
    serial(async () => {
      for (const msg of batch.messages) {
        try {
          const r = DeploymentMarker.safeParse(JSON.parse(msg.value))
          if (r.success) core!.onDeployment(r.data)
        } catch {
          // not JSON: the aggregator logs and skips it too
        }
      }
    })

  return {
    async start() {
      await d.bus.ensureTopics([{ topic: topics.windows }, { topic: topics.alerts }, { topic: topics.deployments }])
      producer = await d.bus.producer()
      const recovered = await rebuild()
      await emit(recovered)
      deployConsumer = d.bus.consumer({ groupId: 'burnwatch-detector-deployments', topics: [topics.deployments], fromBeginning: false })
      await deployConsumer.start(handleDeployments)
      runner = createStageRunner({ stage: 'detector', bus: d.bus, groupId: 'burnwatch-detector', topics: [topics.windows], deadLetterTopic: topics.deadLetter, fromBeginning: true, logger: d.logger, registry: d.registry, plan })
      await runner.start()
      log.info({ topic: topics.windows }, 'detector started')
    },
    async stop() {
      if (stopped) return
      stopped = true
      stopSignal.abort(new Error('detector stopping'))
      await runner?.stop()
      await deployConsumer?.stop()
      await chain
      await producer?.stop()
      cellStore?.close()
      log.info(stats, 'detector stopped')
    },
    stats: () => ({ ...stats }),
  }
}
