/**
 * Drills of the production topology: a three-broker KRaft cluster (infra/kafka/local-cluster.ts)
 * and a ClickHouse server shared by every stage process (infra/clickhouse/local-server.ts).
 *   - leader-kill: the leader of the busiest usage.events partition SIGKILLed under load;
 *   - scale-out: three aggregators, two detectors and two notifiers on six partitions, one of
 *     each SIGKILLed and a new one added mid-stream;
 *   - clickhouse-kill: the ClickHouse server SIGKILLed under load and restarted.
 * The cluster and the shared server start on first use and stop in stopTopologyDrills().
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createClient, ClickHouseLogLevel } from '@clickhouse/client'
import { startLocalKafkaCluster, type LocalKafkaCluster } from '../../infra/kafka/local-cluster.ts'
import { startLocalClickHouse, type LocalClickHouse } from '../../infra/clickhouse/local-server.ts'
import type { Child } from '../support/processes.ts'
import { startFakeSlack } from '../support/fake-slack.ts'
import {
  alive,
  compareTotals,
  ensureTopic,
  expectedOf,
  freePort,
  kafkaClient,
  killHard,
  log,
  prefix,
  produceEvents,
  readTopic,
  realisticEvents,
  result,
  sendOverHttp,
  stageEnv,
  startStage,
  stopGracefully,
  tempDir,
  topicsOf,
  waitForDrain,
  waitUntil,
  type DrillResult,
  type Expected,
  type TotalsCheck,
} from './lib.ts'
import { insertWindows, queryTotals } from './totals.ts'
import { expectedPages, pageCounter, syntheticWindows, type WindowPlan } from './pages.ts'
import { groupLag } from '../../shared/bus/kafka.ts'
import { loadConfig } from '../../shared/config.ts'
import { createDetectorCore } from '../../services/detector/core/index.ts'
import { detectorConfig } from '../../services/detector/config.ts'
import { seriesKey } from '../../shared/producer/series-key.ts'
import { migrate } from '../../shared/clickhouse/migrate.ts'
import type { WindowRecord } from '../../schemas/window.ts'

let cluster: Promise<LocalKafkaCluster> | null = null
let shared: Promise<LocalClickHouse> | null = null

function theCluster(): Promise<LocalKafkaCluster> {
  cluster ??= (async () => {
    log('starting a three-broker Kafka cluster (KRaft, RF 3, min.insync.replicas 2)')
    const t0 = Date.now()
    const c = await startLocalKafkaCluster({ brokers: 3 })
    log(`cluster ready in ${((Date.now() - t0) / 1000).toFixed(0)} s at ${c.brokers.join(',')}`)
    return c
  })()
  return cluster
}

function theServer(): Promise<LocalClickHouse> {
  shared ??= startLocalClickHouse()
  return shared
}

export async function stopTopologyDrills(): Promise<void> {
  await Promise.allSettled([cluster?.then((c) => c.stop()), shared?.then((s) => s.stop())])
}

/** Six-partition topics; retried while a freshly started cluster still elects its first leaders. */
async function sixPartitions(brokers: string[], ...topics: string[]): Promise<void> {
  for (const topic of topics) await waitUntil(`topic ${topic} with leaders`, async () => (await ensureTopic(brokers, topic, 6), true), 60_000, 1000)
}

const database = (label: string) => `drill_${label}_${randomBytes(3).toString('hex')}`
const quietClient = (url: string, db?: string) => createClient({ url, ...(db ? { database: db } : {}), log: { level: ClickHouseLogLevel.OFF } })

/** Totals of a database on a ClickHouse server against the expected events. */
async function serverTotals(url: string, db: string, expected: Expected): Promise<TotalsCheck> {
  const client = quietClient(url, db)
  try {
    return compareTotals(await queryTotals(client), expected)
  } finally {
    await client.close()
  }
}

/** 503s seen by the HTTP clients: how many, over how long, and whether each carried Retry-After. */
function unavailability() {
  let first = 0
  let last = 0
  let count = 0
  let withoutRetryAfter = 0
  return {
    onStatus(status: number, retryAfter: string | null) {
      if (status !== 503) return
      const now = Date.now()
      first ||= now
      last = now
      count++
      if (!retryAfter) withoutRetryAfter++
    },
    get count() {
      return count
    },
    get spanMs() {
      return count ? last - first : 0
    },
    get withoutRetryAfter() {
      return withoutRetryAfter
    },
  }
}

/** The leader of the busiest partition of usage.events SIGKILLed while clients send over HTTP. */
export async function leaderKill(): Promise<DrillResult> {
  const c = await theCluster()
  const ch = await theServer()
  const brokers = c.brokers
  const p = prefix('lk')
  const topics = topicsOf(p)
  const db = database('lk')
  const port = await freePort()
  const chEnv = { CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: db }
  const children: Child[] = []
  try {
    await sixPartitions(brokers, topics.events)
    const agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: tempDir('lk-agg'), extra: chEnv }))
    children.push(agg)
    const ingest = await startStage('ingest', stageEnv({ brokers, prefix: p, dataDir: tempDir('lk-ingest'), port, extra: chEnv }))
    children.push(ingest)
    const events = realisticEvents('lk', 24_000)
    const u = unavailability()
    let accepted = 0
    const sending = sendOverHttp(() => `http://127.0.0.1:${port}`, events, { batch: 200, concurrency: 3, ratePerSec: 1500, onProgress: (n) => (accepted = n), onStatus: (s, r) => u.onStatus(s, r) })
    await waitUntil('a quarter of the events accepted', () => accepted >= events.length / 4, 60_000, 20)
    const admin = kafkaClient(brokers).admin()
    await admin.connect()
    const ends = await admin.fetchTopicOffsets(topics.events)
    const busiest = ends.reduce((a, b) => (Number(b.high) > Number(a.high) ? b : a))
    const meta = await admin.fetchTopicMetadata({ topics: [topics.events] })
    const part = meta.topics[0]!.partitions.find((x) => x.partitionId === busiest.partition)!
    await admin.disconnect()
    const victim = c.nodes[part.leader - 1]!
    const atKill = accepted
    await victim.kill()
    log(`leader-kill: broker ${part.leader} (leader of partition ${part.partitionId}, ${busiest.high} records; replicas ${part.replicas.join(',')}, ISR ${part.isr.join(',')}) SIGKILLed after ${atKill}/${events.length} events acknowledged`)
    await sleep(5000)
    await victim.restart()
    log('leader-kill: broker restarted')
    // the clients' sends end (every batch accepted) or this drill fails with what the ingest said
    const stats = await Promise.race([sending, sleep(180_000).then(() => {
      throw new Error(`the sends did not complete within 180 s of the restart (${accepted}/${events.length} accepted); ingest output:\n${ingest.output().slice(-6000)}`)
    })])
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 180_000)
    const stagesAlive = alive(ingest) && alive(agg)
    await stopGracefully(ingest, 'ingest')
    await stopGracefully(agg, 'aggregator')
    const exp = expectedOf(events)
    const t = await serverTotals(ch.url, db, exp)
    const brief = u.spanMs <= 30_000 && u.withoutRetryAfter === 0
    const notes = [
      `broker ${part.leader} killed (leader of partition ${part.partitionId}, RF ${part.replicas.length}) after ${atKill} acknowledged, down 5 s`,
      `ingest 503: ${u.count} answers over ${(u.spanMs / 1000).toFixed(1)} s, ${u.withoutRetryAfter} without Retry-After; client retries ${stats.retries} (${JSON.stringify(stats.errors)})`,
      ...t.notes,
    ]
    if (!stagesAlive) notes.push('a stage process exited')
    if (!brief) notes.push('503s lasted more than 30 s or lacked Retry-After')
    return result('leader of a busy partition SIGKILL (3 brokers)', { eventsIn: exp.ids.size, eventsStored: t.stored, duplicates: t.duplicates, lost: t.lost }, notes, t.exact && stagesAlive && brief)
  } finally {
    for (const x of children) x.kill('SIGKILL')
  }
}

const committed = async (brokers: string[], groupId: string, topic: string) => {
  const admin = kafkaClient(brokers).admin()
  await admin.connect()
  try {
    const o = await admin.fetchOffsets({ groupId, topics: [topic] })
    return (o[0]?.partitions ?? []).reduce((s, x) => s + Math.max(0, Number(x.offset)), 0)
  } finally {
    await admin.disconnect()
  }
}

/**
 * Scale-out on six partitions: three aggregators share usage.events; two detectors and two
 * notifiers share cost.windows and cost.alerts. Mid-stream one of each is SIGKILLed and a new one
 * is started. Totals exact in the shared server; every window published (republished copies
 * counted); every page delivered once.
 */
export async function scaleOut(): Promise<DrillResult[]> {
  return [await scaleOutAggregators(), await scaleOutDetectorsNotifiers()]
}

async function scaleOutAggregators(): Promise<DrillResult> {
  const c = await theCluster()
  const ch = await theServer()
  const brokers = c.brokers
  const p = prefix('sa')
  const topics = topicsOf(p)
  const db = database('sa')
  const env = () => stageEnv({ brokers, prefix: p, dataDir: tempDir('sa-agg'), extra: { CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: db } })
  const aggs: Child[] = []
  try {
    await sixPartitions(brokers, topics.events, topics.windows)
    for (let i = 0; i < 3; i++) aggs.push(await startStage('aggregate', env()))
    const events = realisticEvents('sa', 30_000)
    const producing = produceEvents(brokers, topics.events, events, { chunk: 500, ratePerSec: 2000 })
    await waitUntil('a third of the events committed', async () => (await committed(brokers, 'burnwatch-aggregator', topics.events)) >= events.length / 3, 90_000, 50)
    const atKill = await committed(brokers, 'burnwatch-aggregator', topics.events)
    await killHard(aggs[0]!)
    log(`scale-out: aggregator 1 of 3 SIGKILLed at ${atKill}/${events.length} committed; adding a fourth`)
    aggs.push(await startStage('aggregate', env()))
    await producing
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 180_000)
    const exp = expectedOf(events)
    const t = await serverTotals(ch.url, db, exp)
    // every window in ClickHouse is published (idle partitions close the last ones within seconds)
    const client = quietClient(ch.url, db)
    const stored = new Map<string, number>()
    const rs = await client.query({ query: "SELECT team, endpoint, model, formatDateTime(window_start, '%FT%T.000Z', 'UTC') AS w, sum(requests) AS r FROM cost_windows GROUP BY team, endpoint, model, window_start", format: 'JSONEachRow' })
    for (const r of await rs.json<{ team: string; endpoint: string; model: string; w: string; r: number }>()) stored.set(`${seriesKey(r)}@${r.w}`, Number(r.r))
    await client.close()
    let published: WindowRecord[] = []
    const keyOf = (w: WindowRecord) => `${seriesKey(w)}@${new Date(w.window_start).toISOString()}`
    await waitUntil('every stored window published', async () => {
      published = (await readTopic(brokers, topics.windows)).map((r) => JSON.parse(r.value) as WindowRecord)
      const keys = new Set(published.map(keyOf))
      return [...stored.keys()].every((k) => keys.has(k))
    }, 150_000, 2000).catch(() => {})
    const stagesAlive = aggs.slice(1).every(alive)
    for (const a of aggs.slice(1)) await stopGracefully(a, 'aggregator')
    const byKey = new Map<string, WindowRecord[]>()
    for (const w of published) byKey.set(keyOf(w), [...(byKey.get(keyOf(w)) ?? []), w])
    const missingKeys = [...stored.keys()].filter((k) => !byKey.has(k))
    const missing = missingKeys.length
    const lastStart = Math.max(...[...stored.keys()].map((k) => Date.parse(k.slice(k.lastIndexOf('@') + 1))))
    const republished = published.length - byKey.size
    const differing = [...byKey.values()].filter((ws) => new Set(ws.map((w) => `${w.requests}/${w.cost_usd}`)).size > 1).length
    const notes = [
      `aggregator SIGKILLed at ${atKill}/${events.length} committed, a fourth added; ${stored.size} windows stored, ${byKey.size} published, ${missing} missing, ${republished} published twice (re-closed after the kill; the detector ignores a window it has seen), ${differing} with differing copies`,
      ...t.notes,
    ]
    if (missing) notes.push(`never published (series@window, minutes before the last window): ${missingKeys.slice(0, 5).map((k) => `${k} (${(lastStart - Date.parse(k.slice(k.lastIndexOf('@') + 1))) / 60_000})`).join(', ')}`)
    if (!stagesAlive) notes.push('an aggregator exited')
    return result('scale-out: 3 aggregators, kill 1, add 1 (6 partitions)', { eventsIn: exp.ids.size, eventsStored: t.stored, duplicates: t.duplicates, lost: t.lost }, notes, t.exact && stagesAlive && missing === 0 && differing === 0)
  } finally {
    for (const a of aggs) a.kill('SIGKILL')
  }
}

async function scaleOutDetectorsNotifiers(): Promise<DrillResult> {
  const c = await theCluster()
  const ch = await theServer()
  const brokers = c.brokers
  const p = prefix('sd')
  const topics = topicsOf(p)
  const db = database('sd')
  const slack = await startFakeSlack({ channels: ['#ai-spend'] })
  const pages = pageCounter(slack)
  const chEnv = { CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: db }
  const children: Child[] = []
  const start = async (stage: 'detect' | 'notify') => {
    const child = await startStage(stage, stageEnv({ brokers, prefix: p, dataDir: tempDir(`sd-${stage}`), extra: chEnv, ...(stage === 'notify' ? { slack } : {}) }))
    children.push(child)
    return child
  }
  const client = quietClient(ch.url)
  try {
    await client.command({ query: `CREATE DATABASE IF NOT EXISTS ${db}` })
    const dbClient = quietClient(ch.url, db)
    await migrate(dbClient)
    await sixPartitions(brokers, topics.windows, topics.alerts)
    const plan: WindowPlan = { teams: 8, endpointsPerTeam: 3, windows: 160 }
    const windows = syntheticWindows(plan)
    const core = createDetectorCore(detectorConfig(loadConfig({}).file))
    const expected = expectedPages(windows.flatMap((w) => core.onWindow(w)))
    const nots = [await start('notify'), await start('notify')]
    const dets = [await start('detect'), await start('detect')]
    const producer = kafkaClient(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const perMinute = plan.teams * plan.endpointsPerTeam
    let sent = 0
    const sendUpTo = async (n: number) => {
      while (sent < n) {
        const slice = windows.slice(sent, Math.min(n, sent + perMinute))
        // as the aggregator does: stored (cost_windows, where a detector rebuilds baselines) before published;
        // keyed by team so that each team's series, and its team-level signals, meet in one detector
        await insertWindows(dbClient, slice)
        await producer.send({ topic: topics.windows, acks: -1, messages: slice.map((w) => ({ key: w.team, value: JSON.stringify(w) })) })
        sent += slice.length
        await sleep(25)
      }
    }
    await sendUpTo(Math.floor(windows.length * 0.8))
    await waitUntil('the detectors to consume 78% of the windows', async () => (await committed(brokers, 'burnwatch-detector', topics.windows)) >= windows.length * 0.78, 90_000, 20)
    const atKill = pages.keys().size
    await killHard(dets[0]!)
    await killHard(nots[0]!)
    log(`scale-out: detector 1 of 2 and notifier 1 of 2 SIGKILLed (${atKill}/${expected.size} pages delivered); adding one of each`)
    dets.push(await start('detect'))
    nots.push(await start('notify'))
    await sendUpTo(windows.length)
    await producer.disconnect()
    const admin = kafkaClient(brokers).admin()
    await admin.connect()
    await waitUntil('detectors and notifiers drained', async () => (await groupLag(admin, 'burnwatch-detector', topics.windows)) === 0 && (await groupLag(admin, 'burnwatch-notifier', topics.alerts)) === 0, 150_000, 300)
    await admin.disconnect()
    await sleep(500)
    const stagesAlive = [...dets.slice(1), ...nots.slice(1)].every(alive)
    for (const d of dets.slice(1)) await stopGracefully(d, 'detector')
    for (const n of nots.slice(1)) await stopGracefully(n, 'notifier')
    await dbClient.close()
    const cmp = pages.compare(expected)
    const notes = [`detector and notifier SIGKILLed with ${atKill}/${expected.size} pages delivered, one of each added`, ...cmp.notes]
    if (!stagesAlive) notes.push('a stage process exited')
    return result('scale-out: 2 detectors + 2 notifiers, kill 1, add 1 of each', { pagesExpected: expected.size, pagesDelivered: cmp.deliveredExpected, duplicates: cmp.duplicates, lost: cmp.lost }, notes, cmp.unexpected === 0 && stagesAlive)
  } finally {
    for (const x of children) x.kill('SIGKILL')
    await client.close()
    await slack.close()
  }
}

/** The ClickHouse server SIGKILLed under load and restarted 5 s later: 0 lost, 0 doubled, the lag drains. */
export async function clickhouseKill(brokers: string[]): Promise<DrillResult> {
  const ch = await startLocalClickHouse()
  const p = prefix('ck')
  const topics = topicsOf(p)
  const db = database('ck')
  const port = await freePort()
  const chEnv = { CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: db }
  const children: Child[] = []
  try {
    const agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: tempDir('ck-agg'), extra: chEnv }))
    children.push(agg)
    const ingest = await startStage('ingest', stageEnv({ brokers, prefix: p, dataDir: tempDir('ck-ingest'), port, extra: chEnv }))
    children.push(ingest)
    const events = realisticEvents('ck', 24_000)
    let accepted = 0
    const sending = sendOverHttp(() => `http://127.0.0.1:${port}`, events, { batch: 200, concurrency: 3, ratePerSec: 1500, onProgress: (n) => (accepted = n) })
    await waitUntil('a quarter of the events accepted', () => accepted >= events.length / 4, 60_000, 20)
    const atKill = await committed(brokers, 'burnwatch-aggregator', topics.events)
    await ch.kill()
    log(`clickhouse-kill: server SIGKILLed with ${atKill} events committed by the aggregator`)
    await sleep(5000)
    await ch.restart()
    const stats = await sending
    const t0 = Date.now()
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 180_000)
    const drainS = ((Date.now() - t0) / 1000).toFixed(1)
    const stagesAlive = alive(ingest) && alive(agg)
    await stopGracefully(ingest, 'ingest')
    await stopGracefully(agg, 'aggregator')
    const exp = expectedOf(events)
    const t = await serverTotals(ch.url, db, exp)
    const notes = [`server killed at ${atKill} committed, down 5 s; lag drained ${drainS} s after the last send; client retries ${stats.retries}`, ...t.notes]
    if (!stagesAlive) notes.push('a stage process exited')
    return result('ClickHouse server SIGKILL + restart', { eventsIn: exp.ids.size, eventsStored: t.stored, duplicates: t.duplicates, lost: t.lost }, notes, t.exact && stagesAlive)
  } finally {
    for (const x of children) x.kill('SIGKILL')
    await ch.stop()
  }
}
