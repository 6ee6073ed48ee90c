/**
 * Drill 1: kill -9 of each stage process mid-stream, then a restart. Every stage runs as its own
 * `node bin/burnwatch.ts <stage>` process against the real broker, with its own chDB data dir.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from '../support/processes.ts'
import { startFakeSlack } from '../support/fake-slack.ts'
import {
  alive,
  committedOffsets as committed,
  checkAggregatorTotals,
  chdbTool,
  ensureTopic,
  expectedOf,
  freePort,
  kafkaClient,
  killHard,
  log,
  prefix,
  produceEvents,
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
} from './lib.ts'
import { groupLag } from '../../shared/bus/kafka.ts'
import { expectedPages, pageCounter, syntheticAlerts, syntheticWindows, type WindowPlan } from './pages.ts'
import { loadConfig } from '../../shared/config.ts'
import { createDetectorCore } from '../../services/detector/core/index.ts'
import { detectorConfig } from '../../services/detector/config.ts'
import type { AlertRecord } from '../../schemas/alert.ts'


/** kill -9 of the ingest process while clients send over HTTP (they retry on connection errors). */
export async function killIngest(brokers: string[]): Promise<DrillResult> {
  const p = prefix('ki')
  const topics = topicsOf(p)
  const port = await freePort()
  const ingestDir = tempDir('ki-ingest')
  const aggDir = tempDir('ki-agg')
  const children: Child[] = []
  try {
    const agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: aggDir }))
    children.push(agg)
    let ingest = await startStage('ingest', stageEnv({ brokers, prefix: p, dataDir: ingestDir, port }))
    children.push(ingest)
    const events = realisticEvents('ki', 20_000)
    const url = `http://127.0.0.1:${port}`
    let killedAt = -1
    let accepted = 0
    const sending = sendOverHttp(() => url, events, { batch: 200, concurrency: 3, ratePerSec: 2500, onProgress: (n) => (accepted = n) })
    await waitUntil('a third of the events accepted', () => accepted >= events.length / 3, 60_000, 20)
    killedAt = accepted
    await killHard(ingest)
    log(`kill-ingest: ingest killed with SIGKILL after ${killedAt}/${events.length} events were acknowledged`)
    ingest = await startStage('ingest', stageEnv({ brokers, prefix: p, dataDir: ingestDir, port }))
    children.push(ingest)
    const stats = await sending
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 120_000)
    const aggAlive = alive(agg)
    await stopGracefully(ingest, 'ingest')
    await stopGracefully(agg, 'aggregator')
    const exp = expectedOf(events)
    const c = await checkAggregatorTotals(aggDir, exp)
    return result(
      'kill -9 ingest',
      { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost },
      [`killed after ${killedAt} acknowledged; client retries ${stats.retries} (${JSON.stringify(stats.errors)})`, ...c.notes],
      c.exact && aggAlive,
    )
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}

/** kill -9 of the aggregator process while events stream in, then a restart. */
export async function killAggregator(brokers: string[]): Promise<DrillResult> {
  const p = prefix('ka')
  const topics = topicsOf(p)
  const aggDir = tempDir('ka-agg')
  const children: Child[] = []
  try {
    await ensureTopic(brokers, topics.events)
    const events = realisticEvents('ka', 40_000)
    let agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: aggDir }))
    children.push(agg)
    const producing = produceEvents(brokers, topics.events, events, { chunk: 500, ratePerSec: 5000 })
    await waitUntil('a quarter of the events committed', async () => (await committed(brokers, 'burnwatch-aggregator', topics.events)) >= events.length / 4, 60_000, 50)
    const atKill = await committed(brokers, 'burnwatch-aggregator', topics.events)
    await killHard(agg)
    log(`kill-aggregator: aggregator killed with SIGKILL at ${atKill}/${events.length} committed`)
    agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: aggDir }))
    children.push(agg)
    await producing
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 150_000)
    await stopGracefully(agg, 'aggregator')
    const exp = expectedOf(events)
    const c = await checkAggregatorTotals(aggDir, exp)
    return result('kill -9 aggregator', { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost }, [`killed at ${atKill}/${events.length} committed`, ...c.notes], c.exact)
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}

/**
 * kill -9 of the detector while windows stream in; the notifier pages a fake Slack. Before the
 * restart the windows published so far are written to the detector's cost_windows, as the
 * aggregator's materialized view does in a shared ClickHouse (it inserts before it publishes);
 * the restarted detector rebuilds its baselines from them. Expected pages come from a reference
 * detection core fed the same windows in the same order.
 */
export async function killDetector(brokers: string[]): Promise<DrillResult> {
  const p = prefix('kd')
  const topics = topicsOf(p)
  const detDir = tempDir('kd-det')
  const notDir = tempDir('kd-not')
  const slack = await startFakeSlack({ channels: ['#ai-spend'] })
  const pages = pageCounter(slack)
  const children: Child[] = []
  try {
    // one partition: the windows reach the detector in exactly the order the reference core sees
    await ensureTopic(brokers, topics.windows, 1)
    const plan: WindowPlan = { teams: 8, endpointsPerTeam: 3, windows: 160 }
    const windows = syntheticWindows(plan)
    const config = loadConfig({})
    const core = createDetectorCore(detectorConfig(config.file))
    const reference: AlertRecord[] = windows.flatMap((w) => core.onWindow(w))
    const expected = expectedPages(reference)
    const not = await startStage('notify', stageEnv({ brokers, prefix: p, dataDir: notDir, slack }))
    children.push(not)
    let det = await startStage('detect', stageEnv({ brokers, prefix: p, dataDir: detDir }))
    children.push(det)
    const producer = kafkaClient(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const perMinute = plan.teams * plan.endpointsPerTeam
    let sent = 0
    const sendUpTo = async (n: number) => {
      while (sent < n) {
        const slice = windows.slice(sent, Math.min(n, sent + perMinute))
        await producer.send({ topic: topics.windows, acks: -1, messages: slice.map((w) => ({ key: `${w.team}|${w.endpoint}|${w.model}`, value: JSON.stringify(w) })) })
        sent += slice.length
        await sleep(25)
      }
    }
    // the detector is killed while the breaks fire (windows ~123-129 of 160), before they resolve
    await sendUpTo(Math.floor(windows.length * 0.8))
    await waitUntil('the detector to consume 78% of the windows', async () => (await committed(brokers, 'burnwatch-detector', topics.windows)) >= windows.length * 0.78, 60_000, 20)
    const atKill = await committed(brokers, 'burnwatch-detector', topics.windows)
    await killHard(det)
    log(`kill-detector: detector killed with SIGKILL at ${atKill}/${windows.length} windows committed; ${pages.keys().size} pages so far of ${expected.size} expected`)
    const file = join(detDir, 'published-windows.ndjson')
    writeFileSync(file, windows.slice(0, sent).map((w) => JSON.stringify(w)).join('\n') + '\n')
    await chdbTool('insert-windows', { dataDir: join(detDir), database: 'burnwatch', file })
    det = await startStage('detect', stageEnv({ brokers, prefix: p, dataDir: detDir }))
    children.push(det)
    await sendUpTo(windows.length)
    await producer.disconnect()
    const admin = kafkaClient(brokers).admin()
    await admin.connect()
    await waitUntil('detector and notifier drained', async () => (await groupLag(admin, 'burnwatch-detector', topics.windows)) === 0 && (await groupLag(admin, 'burnwatch-notifier', topics.alerts)) === 0, 120_000, 300)
    await admin.disconnect()
    await sleep(500)
    await stopGracefully(det, 'detector')
    await stopGracefully(not, 'notifier')
    const c = pages.compare(expected)
    return result('kill -9 detector', { pagesExpected: expected.size, pagesDelivered: c.deliveredExpected, duplicates: c.duplicates, lost: c.lost }, [`killed at ${atKill}/${windows.length} windows; ${reference.length} reference state changes`, ...c.notes], c.unexpected === 0)
  } finally {
    for (const c of children) c.kill('SIGKILL')
    await slack.close()
  }
}

/** kill -9 of the notifier while it pages; restart; every (alert_id, status) is in Slack exactly once. */
export async function killNotifier(brokers: string[]): Promise<DrillResult> {
  const p = prefix('kn')
  const topics = topicsOf(p)
  const notDir = tempDir('kn-not')
  const slack = await startFakeSlack({ channels: ['#ai-spend'] })
  const pages = pageCounter(slack)
  const children: Child[] = []
  try {
    await ensureTopic(brokers, topics.alerts)
    const alerts = syntheticAlerts('kn', 10, 12)
    const expected = expectedPages(alerts)
    let not = await startStage('notify', stageEnv({ brokers, prefix: p, dataDir: notDir, slack }))
    children.push(not)
    const producer = kafkaClient(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    await producer.send({ topic: topics.alerts, acks: -1, messages: alerts.map((a) => ({ key: a.team, value: JSON.stringify(a) })) })
    await producer.disconnect()
    await waitUntil('a third of the pages delivered', () => pages.keys().size >= expected.size / 3, 90_000, 10)
    const atKill = pages.keys().size
    await killHard(not)
    log(`kill-notifier: notifier killed with SIGKILL after ${atKill}/${expected.size} deliveries`)
    not = await startStage('notify', stageEnv({ brokers, prefix: p, dataDir: notDir, slack }))
    children.push(not)
    await waitForDrain(brokers, 'burnwatch-notifier', topics.alerts, 150_000)
    await stopGracefully(not, 'notifier')
    const c = pages.compare(expected)
    return result('kill -9 notifier', { pagesExpected: expected.size, pagesDelivered: c.deliveredExpected, duplicates: c.duplicates, lost: c.lost }, [`killed after ${atKill} deliveries`, ...c.notes], c.unexpected === 0)
  } finally {
    for (const c of children) c.kill('SIGKILL')
    await slack.close()
  }
}
