/**
 * Drill (issue 12): the `alerts` table refuses writes for 30 s while the detector pages, and the
 * detector is killed with SIGKILL during the refusal.
 *
 * Real parts: the detector and the notifier are `node bin/burnwatch.ts <stage>` processes on the
 * real broker and one ClickHouse server (infra/clickhouse/local-server.ts, the server from
 * libchdb.so), paging a fake Slack. The refusal is the server's, not an injected store: over its
 * own admin connection the drill sets `ALTER TABLE alerts MODIFY SETTING max_parts_in_total = 0`,
 * after which ClickHouse refuses every INSERT into `alerts` only, with TOO_MANY_PARTS (252) — the
 * error a real table that cannot take more parts gives, retriable like any ClickHouse overload —
 * and `RESET SETTING` ends it 30 s after the first state change reached cost.alerts. 10 s into
 * the refusal (state changes published, none recorded, the batch's flush retrying and its commit
 * held back) the detector is SIGKILLed; before its restart the drill writes the windows it sent
 * into `cost_windows` as the aggregator's materialized view does on a shared server (it inserts
 * before it publishes), and the restarted detector rebuilds its state from them while the table
 * still refuses.
 *
 * Required: every state change of a reference core fed the same windows paged exactly once (the
 * fake Slack's delivery keys: 0 lost, 0 doubled), none recorded in `alerts` during the refusal,
 * each recorded in `alerts` once afterwards, and the server really refused inserts.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { randomBytes } from 'node:crypto'
import { createClient, ClickHouseLogLevel, type ClickHouseClient } from '@clickhouse/client'
import { startLocalClickHouse } from '../../infra/clickhouse/local-server.ts'
import type { Child } from '../support/processes.ts'
import { startFakeSlack } from '../support/fake-slack.ts'
import { loadConfig } from '../../shared/config.ts'
import { createDetectorCore } from '../../services/detector/core/index.ts'
import { detectorConfig } from '../../services/detector/config.ts'
import type { AlertRecord } from '../../schemas/alert.ts'
import { groupLag } from '../../shared/bus/kafka.ts'
import { alive, ensureTopic, kafkaClient, killHard, log, prefix, readTopic, result, stageEnv, startStage, stopGracefully, tempDir, topicsOf, waitUntil, type DrillResult } from './lib.ts'
import { expectedPages, pageCounter, syntheticWindows, type WindowPlan } from './pages.ts'
import { insertWindows } from './totals.ts'

export const REFUSAL_MS = 30_000
/** the detector is SIGKILLed this long after the first state change reached cost.alerts */
const KILL_AFTER_MS = 10_000

async function one(client: ClickHouseClient, query: string, params?: Record<string, unknown>): Promise<number> {
  const rs = await client.query({ query, format: 'JSONEachRow', ...(params ? { query_params: params } : {}) })
  const [row] = await rs.json<{ n: number | string }>()
  return Number(row?.n ?? 0)
}

export async function alertsRefusal(brokers: string[]): Promise<DrillResult> {
  const ch = await startLocalClickHouse()
  const p = prefix('ar')
  const topics = topicsOf(p)
  const db = `drill_ar_${randomBytes(3).toString('hex')}`
  const chEnv = { CLICKHOUSE_URL: ch.url, CLICKHOUSE_DATABASE: db }
  const detDir = tempDir('ar-det')
  const slack = await startFakeSlack({ channels: ['#ai-spend'] })
  const pages = pageCounter(slack)
  const children: Child[] = []
  const kadmin = kafkaClient(brokers).admin()
  // the drill's own connection to the server: the one that switches the refusal on and off
  const admin = createClient({ url: ch.url, database: db, log: { level: ClickHouseLogLevel.OFF } })
  let refusing = false
  try {
    // one partition: the windows reach the detector in the order the reference core sees them
    await ensureTopic(brokers, topics.windows, 1)
    await kadmin.connect()
    const plan: WindowPlan = { teams: 6, endpointsPerTeam: 3, windows: 120 }
    const windows = syntheticWindows(plan)
    const core = createDetectorCore(detectorConfig(loadConfig({}).file))
    const reference: AlertRecord[] = windows.flatMap((w) => core.onWindow(w))
    const expected = expectedPages(reference)
    const not = await startStage('notify', stageEnv({ brokers, prefix: p, dataDir: tempDir('ar-not'), slack, extra: chEnv }))
    children.push(not)
    let det = await startStage('detect', stageEnv({ brokers, prefix: p, dataDir: detDir, extra: chEnv }))
    children.push(det)
    // the detector migrated the database: the table exists; from now on it refuses every INSERT
    const refusedBefore = await one(admin, "SELECT sum(value) AS n FROM system.errors WHERE name = 'TOO_MANY_PARTS'")
    await admin.command({ query: 'ALTER TABLE alerts MODIFY SETTING max_parts_in_total = 0' })
    refusing = true
    const producer = kafkaClient(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    const perMinute = plan.teams * plan.endpointsPerTeam
    for (let i = 0; i < windows.length; i += perMinute) {
      await producer.send({ topic: topics.windows, acks: -1, messages: windows.slice(i, i + perMinute).map((w) => ({ key: `${w.team}|${w.endpoint}|${w.model}`, value: JSON.stringify(w) })) })
      await sleep(20)
    }
    await producer.disconnect()
    const onAlerts = async () => (await kadmin.fetchTopicOffsets(topics.alerts).catch(() => [])).reduce((s, o) => s + Number(o.high) - Number(o.low), 0)
    await waitUntil('the first state change on cost.alerts', async () => (await onAlerts()) > 0, 90_000, 100)
    const refusalFrom = Date.now()
    log(`alerts-refusal: the server refuses every INSERT into alerts (max_parts_in_total = 0) until ${REFUSAL_MS / 1000} s after the first page`)
    await sleep(KILL_AFTER_MS)
    const publishedAtKill = await onAlerts()
    const recordedAtKill = await one(admin, 'SELECT count() AS n FROM alerts')
    const pagedAtKill = pages.keys().size
    await killHard(det)
    log(`alerts-refusal: detector SIGKILLed ${KILL_AFTER_MS / 1000} s into the refusal: ${publishedAtKill} state changes on cost.alerts, ${pagedAtKill} paged, ${recordedAtKill} in alerts`)
    // what the aggregator's materialized view has written by then on a shared server
    await insertWindows(admin, windows)
    // it starts while the table still refuses: it publishes the state changes it recovers and
    // waits (retrying) to record them, so it says it runs only once the refusal ends
    const restarting = startStage('detect', stageEnv({ brokers, prefix: p, dataDir: detDir, extra: chEnv }), 120_000)
    restarting.catch(() => {})
    await sleep(Math.max(0, refusalFrom + REFUSAL_MS - Date.now()))
    const recordedDuringRefusal = await one(admin, 'SELECT count() AS n FROM alerts')
    const refused = (await one(admin, "SELECT sum(value) AS n FROM system.errors WHERE name = 'TOO_MANY_PARTS'")) - refusedBefore
    await admin.command({ query: 'ALTER TABLE alerts RESET SETTING max_parts_in_total' })
    refusing = false
    const liftedAt = Date.now()
    log(`alerts-refusal: the alerts table accepts writes again (${refused} inserts refused by the server)`)
    det = await restarting
    children.push(det)
    await waitUntil(
      'every state change recorded in alerts, detector and notifier drained',
      async () =>
        (await one(admin, 'SELECT uniqExact(alert_id, status) AS n FROM alerts')) >= expected.size &&
        (await groupLag(kadmin, 'burnwatch-detector', topics.windows)) === 0 &&
        (await groupLag(kadmin, 'burnwatch-notifier', topics.alerts)) === 0,
      120_000,
      300,
    )
    const recordedAfterS = (Date.now() - liftedAt) / 1000
    await sleep(1000)
    const stagesAlive = alive(det) && alive(not)
    await stopGracefully(det, 'detector')
    await stopGracefully(not, 'notifier')

    const published = (await readTopic(brokers, topics.alerts)).map((r) => JSON.parse(r.value) as AlertRecord)
    const states = new Set(reference.map((a) => `${a.alert_id}/${a.status}`))
    const onTopic = new Set(published.map((a) => `${a.alert_id}/${a.status}`))
    const missingOnTopic = [...states].filter((k) => !onTopic.has(k)).length
    const unexpectedOnTopic = [...onTopic].filter((k) => !states.has(k)).length
    const recorded = await one(admin, 'SELECT uniqExact(alert_id, status) AS n FROM alerts')
    const recordedRows = await one(admin, 'SELECT count() AS n FROM alerts FINAL')
    const recordedUnexpected = await one(admin, 'SELECT count() AS n FROM alerts FINAL WHERE NOT has({states:Array(String)}, concat(alert_id, \'/\', status))', { states: [...states] })
    const c = pages.compare(expected)
    const notes = [
      `${refused} inserts into alerts refused by the server over ${REFUSAL_MS / 1000} s; detector SIGKILLed ${KILL_AFTER_MS / 1000} s in (${publishedAtKill} state changes on cost.alerts, ${pagedAtKill} paged, ${recordedAtKill} recorded), restarted during the refusal; ${reference.length} reference state changes, ${onTopic.size} on cost.alerts (${published.length} records), ${recordedDuringRefusal} recorded during the refusal, ${recorded} in alerts (${recordedRows} rows after FINAL) ${recordedAfterS.toFixed(1)} s after it ended; ${c.deliveredExpected}/${expected.size} paged`,
      ...c.notes,
    ]
    if (missingOnTopic) notes.push(`${missingOnTopic} state changes never on cost.alerts`)
    if (unexpectedOnTopic || recordedUnexpected) notes.push(`${unexpectedOnTopic} state changes on cost.alerts and ${recordedUnexpected} in alerts the reference core did not make`)
    if (recordedDuringRefusal) notes.push(`${recordedDuringRefusal} rows reached alerts during the refusal: it did not refuse`)
    if (!refused) notes.push('the server refused no insert: the drill did not test a refusal')
    if (!stagesAlive) notes.push('a stage process exited')
    const ok =
      c.unexpected === 0 && c.lost === 0 && c.duplicates === 0 && missingOnTopic === 0 && unexpectedOnTopic === 0 && recordedUnexpected === 0 &&
      recorded === states.size && recordedRows === states.size && recordedDuringRefusal === 0 && refused > 0 && stagesAlive
    return result('alerts table refusing 30 s + kill -9 detector', { pagesExpected: expected.size, pagesDelivered: c.deliveredExpected, duplicates: c.duplicates, lost: c.lost }, notes, ok)
  } finally {
    for (const x of children) x.kill('SIGKILL')
    if (refusing) await admin.command({ query: 'ALTER TABLE alerts RESET SETTING max_parts_in_total' }).catch(() => {})
    await admin.close().catch(() => {})
    await kadmin.disconnect().catch(() => {})
    await slack.close()
    await ch.stop()
  }
}
