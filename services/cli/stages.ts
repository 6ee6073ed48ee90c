/**
 * Runs one or more stages in this process until SIGTERM/SIGINT, then shuts down in order under
 * a deadline: stop intake (ingest), drain each stage's input (aggregator, detector, notifier, in
 * data-flow order), stop it, then close the clients. With the in-process bus this drain is what
 * makes "nothing accepted is lost" hold on a graceful stop.
 */
import type { AppConfig } from '../../shared/config.ts'
import { createLogger, type Logger } from '../../shared/logger.ts'
import { setTimeout as sleep } from 'node:timers/promises'
import { openRuntime, type Runtime } from '../runtime.ts'
import { createAggregator } from '../aggregator/service.ts'
import { createClickHouseUsageStore } from '../aggregator/clickhouse-store.ts'
import { reconcileRollups } from '../aggregator/reconcile.ts'
import { createDetector } from '../detector/service.ts'
import { createClickHouseAlertStore } from '../detector/clickhouse-store.ts'
import { createNotifier } from '../notifier/index.ts'
import { createIngestServer } from '../ingest/server.ts'
import { startMetricsServer } from '../../shared/metrics-server.ts'
import { createDigestScheduler } from '../digest/scheduler.ts'
import { createSlackDigestPoster } from '../digest/send.ts'
import { curlFirstEvent } from './hints.ts'
import { createDashboardServer } from '../dashboard/server.ts'
import { favorMemory } from '../../shared/v8-memory.ts'

export type StageName = 'ingest' | 'aggregate' | 'detect' | 'notify' | 'ui'

interface Stage {
  name: StageName
  /** the consumer group and topic this stage drains on shutdown */
  input?: { group: string; topic: string }
  start(): Promise<unknown>
  stop(): Promise<void>
}

export interface RunningStages {
  runtime: Runtime
  ingestUrl: string | null
  /** acknowledged events not stored yet that a stop now would lose (embedded bus only; Kafka keeps them) */
  unstored(): Promise<number>
  /** where the dashboard listens (stage `ui`) */
  uiUrl: string | null
  /** graceful shutdown; resolves when everything is stopped */
  stop(): Promise<void>
}

export async function startStages(names: StageName[], config: AppConfig, logger: Logger, opts: { out?: NodeJS.WritableStream } = {}): Promise<RunningStages> {
  // the detector holds state for days: V8 sizes the heap for memory (before it builds that state);
  // the other stages alone keep V8's defaults, for throughput (shared/v8-memory.ts)
  favorMemory(config.v8FavorMemory && names.includes('detect'))
  // the dashboard alone needs no topics, and on a server it only reads, possibly with a read-only
  // login: no migrations there (on chDB, the local engine, they run so a fresh data dir shows empty tables)
  const uiOnly = names.every((n) => n === 'ui')
  const readOnly = uiOnly && config.clickhouse.url !== null
  const rt = await openRuntime(config, logger, { readOnly })
  const topics = config.kafka.topics
  // every stage may be the first to start on a new cluster: create all topics up front
  if (!uiOnly) await rt.bus.ensureTopics(Object.values(topics).map((topic) => ({ topic })))
  const stages: Stage[] = []
  let ingestUrl: string | null = null
  let uiUrl: string | null = null
  if (names.includes('ui')) {
    const ui = createDashboardServer({ client: rt.clickhouse.client, file: config.file, logger, port: config.ui.port, host: config.http.host })
    stages.push({
      name: 'ui',
      start: async () => {
        try {
          uiUrl = (await ui.start()).url
        } catch (err) {
          // paging must not depend on the dashboard: a busy port is a warning when other stages run
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || uiOnly) throw err
          logger.warn({ port: config.ui.port }, `dashboard not started: port ${config.ui.port} is in use; set UI_PORT to a free port`)
        }
      },
      stop: () => ui.stop(),
    })
  }
  if (names.includes('ingest')) {
    const server = createIngestServer({ bus: rt.bus, config, logger, registry: rt.registry })
    stages.push({
      name: 'ingest',
      start: async () => {
        await rt.bus.ensureTopics([{ topic: topics.events }, { topic: topics.deployments }])
        ingestUrl = (await server.start()).url
      },
      stop: () => server.stop(),
    })
  }
  if (names.includes('aggregate')) {
    const client = rt.clickhouse.client
    const agg = createAggregator({
      bus: rt.bus,
      store: createClickHouseUsageStore(client, { stagingDir: rt.clickhouse.stagingDir }),
      config,
      logger,
      registry: rt.registry,
      // chDB, or the loopback server on its data that dies with this process: a crash can cut an insert short
      ...(rt.clickhouse.kind === 'chdb' || rt.embeddedServer ? { repairRollups: () => reconcileRollups(client) } : {}),
    })
    stages.push({ name: 'aggregate', input: { group: 'burnwatch-aggregator', topic: topics.events }, start: () => agg.start(), stop: () => agg.stop() })
  }
  if (names.includes('detect')) {
    const det = createDetector({ bus: rt.bus, store: createClickHouseAlertStore(rt.clickhouse.client), config, logger, registry: rt.registry })
    stages.push({ name: 'detect', input: { group: 'burnwatch-detector', topic: topics.windows }, start: () => det.start(), stop: () => det.stop() })
  }
  if (names.includes('notify')) {
    const n = createNotifier({ bus: rt.bus, clickhouse: rt.clickhouse, config, logger, registry: rt.registry, ...(opts.out ? { consoleStream: opts.out as never } : {}) })
    stages.push({ name: 'notify', input: { group: 'burnwatch-notifier', topic: topics.alerts }, start: () => n.start(), stop: () => n.stop() })
  }
  // the weekly digests go out from the notify stage when Slack is configured (send.ts: once per team and week)
  if (names.includes('notify') && config.slack.botToken && config.file.teams.length) {
    const digests = createDigestScheduler({ client: rt.clickhouse.client, config, poster: createSlackDigestPoster(config.slack), logger })
    stages.push({ name: 'notify', start: async () => digests.start(), stop: () => digests.stop() })
  }
  // stages without the ingest API serve /metrics and /healthz on METRICS_PORT when it is set
  if (!names.includes('ingest') && config.http.metricsPort !== null) {
    let metrics: { stop(): Promise<void> } | null = null
    stages.push({
      name: names[0]!,
      start: async () => (metrics = await startMetricsServer(rt.registry, config.http.metricsPort!, config.http.host)),
      stop: async () => metrics?.stop(),
    })
  }
  // start downstream first so nothing produced is missed, intake last; a stage that cannot start
  // (a busy port) stops the ones already started and closes the clients before the error goes up
  const started: Stage[] = []
  try {
    for (const st of [...stages].reverse()) {
      await st.start()
      started.unshift(st)
    }
  } catch (err) {
    for (const st of started) await st.stop().catch(() => {})
    await rt.close()
    throw err
  }

  let stopping: Promise<void> | null = null
  return {
    runtime: rt,
    get ingestUrl() {
      return ingestUrl
    },
    async unstored() {
      if (rt.bus.kind !== 'in-process' || !names.includes('aggregate')) return 0
      return rt.bus.lag('burnwatch-aggregator', topics.events).catch(() => 0)
    },
    get uiUrl() {
      return uiUrl
    },
    stop() {
      stopping ??= (async () => {
        for (const st of stages) {
          if (st.input && rt.bus.kind === 'in-process') await drain(rt, st.input, logger)
          await st.stop()
        }
        await rt.close()
      })()
      return stopping
    },
  }
}

function clickhouseSummary(rt: Runtime): string {
  const c = rt.config.clickhouse
  if (rt.embeddedServer) {
    const pw = rt.embeddedServer.passwordFile ? `password in ${rt.embeddedServer.passwordFile}` : 'password from BURNWATCH_ANALYST_PASSWORD'
    return `chDB data in ${c.dataDir}/chdb served at ${rt.embeddedServer.url} (native port ${rt.embeddedServer.tcpPort}), database ${c.database}, read-only login analyst, ${pw}`
  }
  return rt.clickhouse.kind === 'chdb' ? `chDB in ${c.dataDir}` : 'server'
}

/** Waits until a group has consumed its topic (bounded: the caller's deadline ends it anyway); says what it could not drain. */
async function drain(rt: Runtime, input: { group: string; topic: string }, logger: Logger): Promise<void> {
  let lag = 0
  for (let i = 0; i < 500; i++) {
    lag = await rt.bus.lag(input.group, input.topic).catch(() => 0)
    if (lag === 0) return
    if (i % 20 === 0) logger.info({ group: input.group, lag }, 'draining before stop')
    await sleep(50)
  }
  logger.error({ group: input.group, topic: input.topic, lag }, `could not drain ${input.topic} in time: ${lag} acknowledged records were not processed and are lost (the embedded bus keeps them in memory only)`)
}

/** How long a graceful stop (SIGTERM/Ctrl-C) may take before the process exits anyway. */
export const SHUTDOWN_DEADLINE_MS = 30_000

/**
 * Graceful stop under a deadline. When the stages cannot drain in time (a store refusing writes,
 * a stuck batch), says how many acknowledged events could not be stored and are lost with the
 * process (the embedded bus keeps them in memory only; with Kafka nothing is lost and the count
 * is 0), and resolves with that count; the caller exits. The stop goes on in the background.
 */
export async function stopWithin(running: RunningStages, deadlineMs: number, logger: Logger): Promise<{ stopped: true } | { stopped: false; unstoredEvents: number }> {
  let timer: NodeJS.Timeout | undefined
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), deadlineMs)))
  const outcome = await Promise.race([running.stop().then(() => 'stopped' as const), timedOut]).finally(() => clearTimeout(timer))
  if (outcome === 'stopped') return { stopped: true }
  const n = await Promise.race([running.unstored(), sleep(1000).then(() => -1)])
  logger.error(
    { deadlineMs, unstoredEvents: n },
    n > 0
      ? `shutdown deadline passed; ${n} acknowledged events could not be stored and are lost (the embedded bus keeps them in memory only)`
      : n === 0
        ? 'shutdown deadline passed; no acknowledged event is waiting to be stored; exiting'
        : 'shutdown deadline passed; could not count the acknowledged events not stored yet; exiting',
  )
  return { stopped: false, unstoredEvents: n }
}

export async function runStages(names: StageName[], config: AppConfig, out: NodeJS.WritableStream, opts: { shutdownDeadlineMs?: number } = {}): Promise<number> {
  const logger = createLogger({ level: config.logLevel, secrets: config.secrets, format: config.logFormat })
  const running = await startStages(names, config, logger, { out })
  const rt = running.runtime
  out.write(`burnwatch: ${names.join(', ')} running (${rt.bus.kind === 'kafka' ? `Kafka at ${config.kafka.brokers?.join(',')}` : 'embedded in-process bus'}, ClickHouse ${clickhouseSummary(rt)}, pages to ${config.slack.botToken ? 'Slack' : `the console and ${config.dataDir}/pages.ndjson`}).\n`)
  if (running.ingestUrl) {
    out.write(`Ingest API listening on ${running.ingestUrl}. Send a first event:\n  ${curlFirstEvent(running.ingestUrl, config)}\n`)
  }
  if (running.uiUrl) out.write(`Dashboard: ${running.uiUrl}${config.publicUrl && config.publicUrl !== running.uiUrl ? ` (pages link to ${config.publicUrl})` : ''}\n`)
  out.write('Ctrl-C to stop.\n')
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'))
    process.once('SIGINT', () => resolve('SIGINT'))
  })
  logger.info({ signal }, 'shutting down: stop intake, drain, flush, close')
  const stop = await stopWithin(running, opts.shutdownDeadlineMs ?? SHUTDOWN_DEADLINE_MS, logger)
  if (!stop.stopped) process.exit(1)
  logger.info('stopped')
  // Everything is flushed and committed. After a broker restart kafkajs can keep reconnecting
  // sockets open past disconnect() (tulios/kafkajs#1147), which would keep a stopped process
  // alive until it is killed; this unref'd timer only fires if something still holds the loop.
  setTimeout(() => {
    logger.warn('client connections still open 2 s after a clean stop; exiting')
    process.exit()
  }, 2000).unref()
  return 0
}
