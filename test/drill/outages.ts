/**
 * Drills 3 and 4:
 *   ClickHouse failing for 60 s under the aggregator, in this process (one chDB engine, one
 *   database each; an injected store whose insertEvents throws a retriable DependencyError):
 *   consumption pauses, nothing is lost, the lag drains after, no event late. No kill -9 here:
 *   the injected store lives in this process. The kill -9 during a ClickHouse outage is in
 *   test/drill/outage-break.ts (stage processes, a real ClickHouse server stopped for 60 s).
 *   Slack answering 429 (Retry-After) and 5xx (some after posting: the ambiguous case) for 60 s
 *   under the notifier process, killed with SIGKILL and restarted halfway: every page is
 *   delivered exactly once once Slack recovers.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { openClickHouse, type ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { migrate } from '../../shared/clickhouse/migrate.ts'
import { loadConfig } from '../../shared/config.ts'
import { createLogger } from '../../shared/logger.ts'
import { createRegistry } from '../../shared/metrics.ts'
import { createBus } from '../../shared/bus/index.ts'
import { DependencyError } from '../../shared/errors.ts'
import { createAggregator } from '../../services/aggregator/service.ts'
import { createClickHouseUsageStore } from '../../services/aggregator/clickhouse-store.ts'
import { startFakeSlack, type Fault } from '../support/fake-slack.ts'
import { ensureTopic, expectedOf, kafkaClient, killHard, log, prefix, produceEvents, realisticEvents, result, stageEnv, startStage, stopGracefully, tempDir, topicsOf, waitUntil, type DrillResult } from './lib.ts'
import type { Child } from '../support/processes.ts'
import { groupLag } from '../../shared/bus/kafka.ts'
import { expectedPages, pageCounter, syntheticAlerts } from './pages.ts'

export const OUTAGE_MS = 60_000

/** chDB is one engine per process: every in-process drill uses this data dir, each its own database. */
let engineDir: string | null = null
export async function openDrillClickHouse(database: string): Promise<ClickHouseHandle> {
  engineDir ??= tempDir('engine')
  const h = await openClickHouse({ url: null, user: 'default', password: '', database, dataDir: engineDir })
  await migrate(h.client)
  return h
}

export async function clickhouseOutage(brokers: string[]): Promise<DrillResult> {
  const p = prefix('ch')
  const topics = topicsOf(p)
  const logger = createLogger({ level: 'error' })
  const config = loadConfig({ KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: p, LOG_LEVEL: 'error' })
  const h = await openDrillClickHouse('drill_ch_outage')
  const bus = createBus({ brokers, clientId: 'drill-ch', logger })
  const real = createClickHouseUsageStore(h.client, { stagingDir: h.stagingDir })
  let downUntil = 0
  let refused = 0
  const store: typeof real = {
    ...real,
    async insertEvents(rows, token) {
      if (Date.now() < downUntil) {
        refused++
        throw new DependencyError('clickhouse', 'insert into usage_events failed: connect ECONNREFUSED (drill: ClickHouse is down)', { code: 'ECONNREFUSED', retriable: true })
      }
      return real.insertEvents(rows, token)
    },
  }
  const agg = createAggregator({ bus, store, config, logger, registry: createRegistry() })
  const admin = kafkaClient(brokers).admin()
  try {
    await ensureTopic(brokers, topics.events)
    await admin.connect()
    await agg.start()
    const events = realisticEvents('ch', 24_000)
    const before = events.slice(0, 4000)
    const during = events.slice(4000)
    await produceEvents(brokers, topics.events, before)
    await waitUntil('the first events stored', async () => (await groupLag(admin, 'burnwatch-aggregator', topics.events)) === 0, 60_000)
    downUntil = Date.now() + OUTAGE_MS
    log(`clickhouse: inserts fail for ${OUTAGE_MS / 1000} s from now`)
    await produceEvents(brokers, topics.events, during, { chunk: 500, ratePerSec: 600 })
    const committedDuring = await committedOf(admin, topics.events)
    await sleep(Math.max(0, downUntil - Date.now() - 1000))
    const lagAtEnd = await groupLag(admin, 'burnwatch-aggregator', topics.events)
    const committedAtEnd = await committedOf(admin, topics.events)
    await sleep(Math.max(0, downUntil - Date.now()))
    const t0 = Date.now()
    await waitUntil('the lag to drain after ClickHouse recovered', async () => (await groupLag(admin, 'burnwatch-aggregator', topics.events)) === 0, 90_000, 200)
    const drainSeconds = (Date.now() - t0) / 1000
    await agg.stop()
    const rs = await h.client.query({ query: 'SELECT count() AS rows, uniqExact(event_id) AS ids, sum(input_tokens) AS input, sum(output_tokens) AS output, countIf(late) AS late FROM usage_events', format: 'JSONEachRow' })
    const [t] = await rs.json<{ rows: number; ids: number; input: number; output: number; late: number }>()
    // event time must not advance while the batch waits for ClickHouse: none of its events may end up late
    const late = Number(t!.late)
    const w = await h.client.query({ query: 'SELECT sum(requests) AS r FROM cost_windows', format: 'JSONEachRow' })
    const windowRequests = Number((await w.json<{ r: number }>())[0]?.r ?? 0)
    const exp = expectedOf(events)
    const rows = Number(t!.rows)
    const ids = Number(t!.ids)
    const paused = committedAtEnd === committedDuring && committedAtEnd === before.length
    const exact = Number(t!.input) === exp.input && Number(t!.output) === exp.output && windowRequests === rows
    const notes = [
      `${refused} inserts refused over ${OUTAGE_MS / 1000} s; committed offsets stayed at ${committedAtEnd}/${events.length} (lag ${lagAtEnd} at the end of the outage); drained ${drainSeconds.toFixed(1)} s after recovery`,
    ]
    if (!paused) notes.push(`consumption did not pause: committed ${committedDuring} → ${committedAtEnd} during the outage`)
    if (!exact) notes.push(`token sums or cost_windows (${windowRequests} requests for ${rows} rows) differ`)
    if (late) notes.push(`${late} events became late during the outage (event time advanced while the batch was in flight)`)
    return result('ClickHouse down 60 s', { eventsIn: exp.ids.size, eventsStored: ids, duplicates: rows - ids, lost: exp.ids.size - ids }, notes, paused && exact && refused > 0 && late === 0)
  } finally {
    await agg.stop().catch(() => {})
    await admin.disconnect().catch(() => {})
    await bus.stop().catch(() => {})
    await h.close()
  }
}

async function committedOf(admin: ReturnType<ReturnType<typeof kafkaClient>['admin']>, topic: string): Promise<number> {
  const o = await admin.fetchOffsets({ groupId: 'burnwatch-aggregator', topics: [topic] })
  return (o[0]?.partitions ?? []).reduce((s, x) => s + Math.max(0, Number(x.offset)), 0)
}

/**
 * The notifier runs as its own process (`burnwatch notify`, its own chDB data dir) against the
 * fake Slack in this process; halfway through the outage it is killed with SIGKILL and restarted,
 * while Slack still fails: the restarted notifier must neither lose nor repeat a page.
 */
export async function slackOutage(brokers: string[]): Promise<DrillResult> {
  const p = prefix('sl')
  const topics = topicsOf(p)
  const slack = await startFakeSlack({ channels: ['#ai-spend'] })
  const pages = pageCounter(slack)
  const notDir = tempDir('sl-not')
  const children: Child[] = []
  const admin = kafkaClient(brokers).admin()
  // every call fails for the minute: 429 with Retry-After, 500, and 500 after posting (ambiguous)
  const kinds: Fault[] = [{ kind: 'rate_limited', retryAfterSec: 2 }, { kind: 'http_500' }, { kind: 'http_500', afterWork: true }, { kind: 'rate_limited', retryAfterSec: 1 }, { kind: 'error', error: 'service_unavailable' }]
  let pushed = 0
  let outageStart = 0
  const faultAnswers = () => slack.calls.filter((c) => c.at >= outageStart && (c.status !== 200 || c.error === 'service_unavailable')).length
  const topUp = () => {
    const pending = pushed - faultAnswers()
    for (let i = pending; i < 3; i++) slack.failNext(1, kinds[pushed++ % kinds.length]!)
  }
  try {
    await ensureTopic(brokers, topics.alerts)
    await admin.connect()
    let notifier = await startStage('notify', stageEnv({ brokers, prefix: p, dataDir: notDir, slack }))
    children.push(notifier)
    const alerts = syntheticAlerts('sl', 6, 8)
    const expected = expectedPages(alerts)
    outageStart = Date.now()
    topUp()
    const timer = setInterval(topUp, 20)
    log(`slack: every Slack call answers 429/5xx for ${OUTAGE_MS / 1000} s from now`)
    const producer = kafkaClient(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    await producer.send({ topic: topics.alerts, acks: -1, messages: alerts.map((a) => ({ key: a.team, value: JSON.stringify(a) })) })
    await producer.disconnect()
    await sleep(Math.max(0, OUTAGE_MS / 2 - (Date.now() - outageStart)))
    const atKill = pages.keys().size
    await killHard(notifier)
    log(`slack: notifier killed with SIGKILL ${((Date.now() - outageStart) / 1000).toFixed(0)} s into the outage (${atKill} pages landed so far); restarted`)
    notifier = await startStage('notify', stageEnv({ brokers, prefix: p, dataDir: notDir, slack }))
    children.push(notifier)
    await sleep(Math.max(0, OUTAGE_MS - (Date.now() - outageStart)))
    clearInterval(timer)
    // the ambiguous case for sure: the next two posts land in Slack but are answered 500
    slack.failNext(2, { kind: 'http_500', afterWork: true }, 'chat.postMessage')
    const during = slack.calls.filter((c) => c.at >= outageStart)
    const faulted = during.filter((c) => c.status !== 200 || c.error === 'service_unavailable').length
    const deliveredDuring = pages.keys().size
    log(`slack: recovered after ${during.length} calls (${faulted} answered with a fault); ${deliveredDuring} pages landed during the outage (posted before a 500)`)
    const t0 = Date.now()
    await waitUntil('the notifier to drain after Slack recovered', async () => (await groupLag(admin, 'burnwatch-notifier', topics.alerts)) === 0, 150_000, 300)
    const drainSeconds = (Date.now() - t0) / 1000
    await stopGracefully(notifier, 'notifier')
    const c = pages.compare(expected)
    const rateLimited = during.filter((x) => x.status === 429).length
    return result(
      'Slack 429/5xx for 60 s + kill -9 notifier',
      { pagesExpected: expected.size, pagesDelivered: c.deliveredExpected, duplicates: c.duplicates, lost: c.lost },
      [`${faulted} Slack calls failed during the outage (${rateLimited} × 429), the notifier SIGKILLed 30 s in (${atKill} pages out) and restarted, then 2 posts landed but answered 500; all pages out ${drainSeconds.toFixed(1)} s after recovery`, ...c.notes],
      c.unexpected === 0 && faulted > 0,
    )
  } finally {
    for (const x of children) x.kill('SIGKILL')
    await admin.disconnect().catch(() => {})
    await slack.close()
  }
}
