/**
 * Drill (issue 12): a trend break that starts during a 60 s ClickHouse outage is paged after
 * recovery, once; with a kill -9 of the aggregator during the outage.
 *
 * Every stage is its own `node bin/burnwatch.ts <stage>` process (aggregator, detector, notifier)
 * against the real broker and one real ClickHouse server (infra/clickhouse/local-server.ts, the
 * server from libchdb.so), which is stopped for 60 s: a real outage, not an injected error.
 * Realistic traffic (test/drill/lib.ts, the demo series, 110 minutes of event time ending now):
 * the first 85 minutes are stored before the outage (the detector's baseline); the last 25, in
 * which `search / POST /v1/summarize` answers with +60% output tokens from a new deployment, are
 * produced while ClickHouse is down. 20 s into the outage the aggregator, whose batch waits for
 * ClickHouse, is killed with SIGKILL; it is restarted once the server is back.
 *
 * Required: the break is not paged before recovery and is paged after it exactly once (the fake
 * Slack's delivery keys); every state change on cost.alerts once and in Slack once; every event
 * stored once (totals and rollups on the server); 0 events late.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import { createClient, ClickHouseLogLevel } from '@clickhouse/client'
import { startLocalClickHouse } from '../../infra/clickhouse/local-server.ts'
import type { Child } from '../support/processes.ts'
import { startFakeSlack } from '../support/fake-slack.ts'
import { generateTraffic, DEMO_SERIES } from '../../services/demo/traffic.ts'
import type { UsageEvent } from '../../schemas/usage-event.ts'
import type { AlertRecord } from '../../schemas/alert.ts'
import { alertDeliveryKey } from '../../services/notifier/sink.ts'
import { groupLag } from '../../shared/bus/kafka.ts'
import { alive, committedOffsets, compareTotals, ensureTopic, expectedOf, kafkaClient, killHard, log, prefix, produceEvents, readTopic, result, stageEnv, startStage, stopGracefully, tempDir, topicsOf, waitForDrain, waitUntil, type DrillResult } from './lib.ts'
import { queryTotals } from './totals.ts'
import { expectedPages, pageCounter } from './pages.ts'
import { OUTAGE_MS } from './outages.ts'

const MINUTES = 110
const BREAK_AT_MINUTE = 85
const BREAK = { team: 'search', endpoint: 'POST /v1/summarize' }

export async function clickhouseOutageBreak(brokers: string[]): Promise<DrillResult> {
  const ch = await startLocalClickHouse()
  const p = prefix('ob')
  const topics = topicsOf(p)
  const db = `drill_ob_${randomBytes(3).toString('hex')}`
  const chEnv = { CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: db }
  const aggDir = tempDir('ob-agg')
  const slack = await startFakeSlack({ channels: ['#ai-spend'] })
  const pages = pageCounter(slack)
  const children: Child[] = []
  const admin = kafkaClient(brokers).admin()
  try {
    await ensureTopic(brokers, topics.events)
    await admin.connect()
    const start = Math.floor((Date.now() - (MINUTES + 1) * 60_000) / 60_000) * 60_000
    const breakAt = start + BREAK_AT_MINUTE * 60_000
    const events: UsageEvent[] = []
    for (const e of generateTraffic({ start, minutes: MINUTES, series: DEMO_SERIES, seed: 23, regression: { ...BREAK, at: breakAt, deployment_id: 'summarize-v2', outputFactor: 1.6 } })) {
      events.push({ ...e, event_id: `ob-${e.event_id}` })
    }
    const before = events.filter((e) => Date.parse(e.timestamp) < breakAt)
    const during = events.slice(before.length)
    let agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: aggDir, extra: chEnv }))
    children.push(agg)
    const det = await startStage('detect', stageEnv({ brokers, prefix: p, dataDir: tempDir('ob-det'), extra: chEnv }))
    children.push(det)
    const not = await startStage('notify', stageEnv({ brokers, prefix: p, dataDir: tempDir('ob-not'), slack, extra: chEnv }))
    children.push(not)
    await produceEvents(brokers, topics.events, before, { chunk: 500 })
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 120_000)
    const isBreak = (a: AlertRecord) => a.status === 'firing' && a.signal === 'cost_per_request' && a.team === BREAK.team && a.endpoint === BREAK.endpoint

    await ch.stop()
    const downAt = Date.now()
    log(`outage-break: ClickHouse server stopped for ${OUTAGE_MS / 1000} s; ${during.length} events with the break (+60% output tokens on ${BREAK.team} ${BREAK.endpoint}) go in now`)
    await produceEvents(brokers, topics.events, during, { chunk: 250, ratePerSec: 400 })
    await sleep(Math.max(0, downAt + 20_000 - Date.now()))
    const atKill = await committedOffsets(brokers, 'burnwatch-aggregator', topics.events)
    await killHard(agg)
    log(`outage-break: aggregator killed with SIGKILL during the outage at ${atKill}/${events.length} committed`)
    await sleep(Math.max(0, downAt + OUTAGE_MS - Date.now()))
    // windows close only once their events are stored: nothing of the break can be out yet
    const breakBeforeRecovery = (await alertsOn(brokers, topics.alerts)).filter(isBreak).length
    await ch.restart()
    const upAt = Date.now()
    log('outage-break: ClickHouse server back; the aggregator restarts')
    agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: aggDir, extra: chEnv }))
    children.push(agg)
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 150_000)
    await waitUntil('the break to be paged', async () => (await alertsOn(brokers, topics.alerts)).some(isBreak), 180_000, 1000)
    await waitUntil(
      'detector and notifier drained',
      async () => (await groupLag(admin, 'burnwatch-detector', topics.windows)) === 0 && (await groupLag(admin, 'burnwatch-notifier', topics.alerts)) === 0,
      120_000,
      300,
    )
    const pagedAfterS = (Date.now() - upAt) / 1000
    await sleep(1000)
    const stagesAlive = alive(agg) && alive(det) && alive(not)
    await stopGracefully(agg, 'aggregator')
    await stopGracefully(det, 'detector')
    await stopGracefully(not, 'notifier')

    const published = await alertsOn(brokers, topics.alerts)
    const expected = expectedPages(published)
    const c = pages.compare(expected)
    const breakKeys = published.filter(isBreak).map(alertDeliveryKey)
    const breakPages = breakKeys.reduce((s, k) => s + (pages.counts.get(k) ?? 0), 0)
    const client = createClient({ url: ch.url, database: db, log: { level: ClickHouseLogLevel.OFF } })
    const exp = expectedOf(events)
    let t: ReturnType<typeof compareTotals>
    let late: number
    try {
      t = compareTotals(await queryTotals(client), exp)
      late = Number((await (await client.query({ query: 'SELECT countIf(late) AS n FROM usage_events', format: 'JSONEachRow' })).json<{ n: number }>())[0]?.n ?? -1)
    } finally {
      await client.close()
    }
    const publishedDup = published.length - new Set(published.map(alertDeliveryKey)).size
    const notes = [
      `ClickHouse server down ${OUTAGE_MS / 1000} s while ${during.length} events of the break arrived; aggregator SIGKILLed 20 s in at ${atKill}/${events.length} committed, restarted after recovery; the break paged ${pagedAfterS.toFixed(1)} s after recovery (${breakPages} page(s) of it; ${published.length} state changes on cost.alerts, ${c.deliveredExpected} delivered)`,
      ...t.notes,
      ...c.notes,
    ]
    if (breakBeforeRecovery) notes.push(`the break was on cost.alerts ${breakBeforeRecovery} times before ClickHouse recovered`)
    if (breakPages !== 1) notes.push(`the break was paged ${breakPages} times, not once`)
    if (publishedDup) notes.push(`${publishedDup} state changes published twice on cost.alerts`)
    if (late) notes.push(`${late} events stored late`)
    if (!stagesAlive) notes.push('a stage process exited')
    const ok = t.exact && c.unexpected === 0 && breakPages === 1 && !breakBeforeRecovery && !publishedDup && late === 0 && stagesAlive
    return result(
      'break during ClickHouse down 60 s + kill -9 aggregator',
      { eventsIn: exp.ids.size, eventsStored: t.stored, duplicates: t.duplicates + c.duplicates, lost: t.lost + c.lost, pagesExpected: expected.size, pagesDelivered: c.deliveredExpected },
      notes,
      ok,
    )
  } finally {
    for (const x of children) x.kill('SIGKILL')
    await admin.disconnect().catch(() => {})
    await slack.close()
    await ch.stop()
  }
}

async function alertsOn(brokers: string[], topic: string): Promise<AlertRecord[]> {
  const a = kafkaClient(brokers).admin()
  await a.connect()
  const exists = await a.listTopics().then((ts) => ts.includes(topic)).finally(() => a.disconnect())
  if (!exists) return []
  return (await readTopic(brokers, topic)).map((r) => JSON.parse(r.value) as AlertRecord)
}
