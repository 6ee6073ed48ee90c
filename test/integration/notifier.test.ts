// The notifier against real services: the real @slack/web-api WebClient talking to a loopback
// fake of the Web API (test/support/fake-slack.ts), ClickHouse (chDB or a server, fresh
// database per test), and the real Kafka broker with a unique topic and group per test (one
// test also on the in-process bus). No mocks of the Slack client or the database.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { PassThrough } from 'node:stream'
import { afterEach, describe, expect, inject, it } from 'vitest'
import type { AlertRecord } from '../../schemas/alert.ts'
import { createInProcessBus } from '../../shared/bus/in-process.ts'
import { createKafkaBus } from '../../shared/bus/kafka.ts'
import type { Bus, BusProducer } from '../../shared/bus/port.ts'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { loadConfig, type AppConfig } from '../../shared/config.ts'
import { ValidationError } from '../../shared/errors.ts'
import { createLogger, type Logger } from '../../shared/logger.ts'
import { createRegistry } from '../../shared/metrics.ts'
import { createConsoleSink } from '../../services/notifier/console.ts'
import { createClickHouseDeliveryStore, type DeliveryRow } from '../../services/notifier/deliveries.ts'
import { notifierMetrics } from '../../services/notifier/metrics.ts'
import { reproduceQuery } from '../../services/notifier/render.ts'
import { createNotifier, type Notifier } from '../../services/notifier/service.ts'
import { addSilence, formatSilences, listSilences } from '../../services/notifier/silences.ts'
import type { PageSink } from '../../services/notifier/sink.ts'
import { createSlackSink } from '../../services/notifier/slack.ts'
import { COLORS, renderChart } from '../../services/notifier/chart.ts'
import { loadChartInput } from '../../services/notifier/chart-data.ts'
import { startFakeSlack, type FakeSlack } from '../support/fake-slack.ts'
import { decodePng, readChart, writeArtifact } from '../support/png.ts'
import { makeAlert } from '../support/alerts.ts'
import { openTestClickHouse, type ClickHouseTarget } from '../support/clickhouse.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[]
    clickhouse: ClickHouseTarget
  }
}

const CONFIG_YAML = `
defaults:
  slack_channel: "#ai-spend"
teams:
  - name: search
    slack_channel: "#search-oncall"
    mention: "<!subteam^S012345>"
  - name: ads
    slack_channel: "#ads-oncall"
  - name: ghost
    slack_channel: "#gone"
deployment_url_template: "https://deploys.example.com/{deployment_id}"
environments:
  - name: staging
    page: false
`

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (Date.now() < end) {
    if (await cond()) return
    await sleep(50)
  }
  throw new Error(`timed out waiting for ${what}`)
}

interface Harness {
  id: string
  fake: FakeSlack
  config: AppConfig
  ch: ClickHouseHandle
  bus: Bus
  producer: BusProducer
  logs: string[]
  logger: Logger
  topic: string
  alert(over: Partial<AlertRecord>): AlertRecord
  send(records: (AlertRecord | string)[], key?: string): Promise<void>
  notifier(opts?: { sink?: PageSink; groupId?: string }): Promise<Notifier>
  rows(ids: string[]): Promise<Map<string, DeliveryRow>>
}

const cleanups: (() => Promise<unknown>)[] = []
let currentLogs: string[] = []
afterEach(async (ctx) => {
  // the notifier's own log explains a failure best
  if (ctx.task.result?.state === 'fail') console.log(currentLogs.slice(-40).join(''))
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

async function harness(kind: 'kafka' | 'in-process'): Promise<Harness> {
  const id = randomBytes(4).toString('hex')
  const dir = mkdtempSync(join(tmpdir(), 'bw-notifier-'))
  writeFileSync(join(dir, 'burnwatch.yaml'), CONFIG_YAML)
  const fake = await startFakeSlack({ channels: ['#search-oncall', '#ads-oncall', '#ai-spend'] })
  cleanups.push(() => fake.close())
  const config = loadConfig({ SLACK_BOT_TOKEN: fake.token, SLACK_API_URL: fake.url, KAFKA_TOPIC_PREFIX: `it-${id}.`, BURNWATCH_CONFIG: join(dir, 'burnwatch.yaml'), BURNWATCH_DATA_DIR: dir })
  const logs: string[] = []
  // no `secrets` scrubbing here on purpose: the test checks that the token never reaches the log
  const logger = createLogger({ level: 'info', destination: { write: (s: string) => void logs.push(s) } })
  currentLogs = logs
  const ch = await openTestClickHouse(inject('clickhouse'))
  cleanups.push(() => ch.close())
  const bus = kind === 'kafka' ? createKafkaBus({ brokers: inject('kafkaBrokers'), clientId: `it-notifier-${id}`, logger, partitions: 2 }) : createInProcessBus({ partitions: 2 })
  cleanups.push(() => bus.stop())
  const topic = config.kafka.topics.alerts
  await bus.ensureTopics([{ topic, partitions: 2 }])
  const producer = await bus.producer()
  cleanups.push(() => producer.stop())
  const store = createClickHouseDeliveryStore(ch.client)
  let n = 0
  return {
    id,
    fake,
    config,
    ch,
    bus,
    producer,
    logs,
    logger,
    topic,
    alert(over) {
      return makeAlert({ alert_id: `${id}-a${++n}`, deployment_ids: [`deploy-${id}`], drivers: { input_tokens_per_request: 3.5, output_tokens_per_request: 38.2, cache_reads: 0, price: 0, error_share: 0, primary: 'output_tokens_per_request' }, monthly_impact_usd: 12_345, ...over })
    },
    async send(records, key) {
      await producer.send(
        topic,
        records.map((r) => (typeof r === 'string' ? { key: key ?? 'bad', value: r } : { key: key ?? r.team, value: JSON.stringify(r) })),
      )
    },
    async notifier(opts = {}) {
      const nt = createNotifier({ bus, clickhouse: ch, config, logger, groupId: opts.groupId ?? `notifier-${id}`, ...(opts.sink ? { sink: opts.sink } : {}) })
      cleanups.push(() => nt.stop())
      await nt.start()
      return nt
    },
    async rows(ids) {
      const out = new Map<string, DeliveryRow>()
      for (const r of await store.latest(ids)) out.set(`${r.alert_id}/${r.status}${r.change ? `@${r.change}` : ''}`, r)
      return out
    },
  }
}

const metric = async (nt: Notifier, name: string, labels: Record<string, string> = {}) => {
  const m = await nt.registry.getSingleMetric(name)?.get()
  return (m?.values ?? []).filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((s, v) => s + v.value, 0)
}

const text = (m: { text: string; blocks: unknown[] }) => m.text + JSON.stringify(m.blocks)

/** Minute windows (cost_windows_env, the table charts read) of the alert's series from 4 h before its change point: `before` USD/request, then `after`; and a deployment marker at the change point. */
async function storeSeries(ch: ClickHouseHandle, a: AlertRecord, before: number, after: number, untilMs = Date.parse(a.detected_at) + 30 * 60_000) {
  const started = Date.parse(a.started_at)
  const values = []
  for (let t = started - 4 * 3_600_000; t < untilMs; t += 60_000) {
    const requests = 100 + ((t / 60_000) % 7)
    const perRequest = (t < started ? before : after) * (1 + (((t / 60_000) % 5) - 2) * 0.02)
    values.push({ team: a.team, environment: a.environment ?? 'production', endpoint: a.endpoint, model: a.model, window_start: new Date(t).toISOString().slice(0, 19).replace('T', ' '), requests, errors: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, cost_usd: (requests * perRequest).toFixed(9), cost_sq_sum: 0, unpriced_requests: 0, late_events: 0, deployments: { [t < started ? 'old-release' : a.deployment_ids[0]!]: requests } })
  }
  await ch.client.insert({ table: 'cost_windows_env', values, format: 'JSONEachRow' })
  await ch.client.insert({ table: 'deployments', values: [{ deployment_id: a.deployment_ids[0], team: a.team, service: 'search-api', timestamp: new Date(started).toISOString().replace('T', ' ').replace('Z', ''), endpoint: a.endpoint }], format: 'JSONEachRow' })
}

describe('notifier (Slack fake, ClickHouse, bus)', () => {
  it.each(['in-process', 'kafka'] as const)('%s bus: one page per break in the team channel, update and resolution threaded, parent edited; bad records skipped', async (kind) => {
    const h = await harness(kind)
    const nt = await h.notifier()
    const a = h.alert({})
    const b = h.alert({ team: 'ads', endpoint: 'ads-ranker', model: 'claude-3-5-haiku', deployment_ids: [] })
    await h.send(['{not json', JSON.stringify({ alert_id: 'x', status: 'exploded' }), a, b])
    await until('both pages', () => h.fake.posts('#search-oncall').length === 1 && h.fake.posts('#ads-oncall').length === 1)
    const page = h.fake.posts('#search-oncall')[0]!
    expect(text(page)).toContain(`<https://deploys.example.com/deploy-${h.id}|deploy-${h.id}>`)
    expect(page.text).toContain('<!subteam^S012345>')
    expect(text(h.fake.posts('#ads-oncall')[0]!)).toContain('ads-ranker')

    // worse, then worse again (each update is its own state change), then resolved
    const worse1 = { ...a, status: 'updated' as const, current: 0.0025, change_pct: 108.3, detected_at: '2026-11-22T10:40:00.000Z' }
    const worse2 = { ...a, status: 'updated' as const, current: 0.0031, change_pct: 158.4, detected_at: '2026-11-22T10:50:00.000Z' }
    await h.send([worse1, worse2, { ...a, status: 'resolved', current: 0.00121, change_pct: 0.8, detected_at: '2026-11-22T11:00:00.000Z' }])
    await until('three replies', () => h.fake.replies('#search-oncall', page.ts).length === 3)
    const [worse, worseAgain, resolved] = h.fake.replies('#search-oncall', page.ts)
    expect(text(worse!)).toContain('worse')
    expect(text(worse!)).toContain('+108%')
    expect(text(worseAgain!)).toContain('+158%')
    expect(text(resolved!)).toContain('resolved')
    await until('parent edited three times', () => page.edits >= 3)
    expect(JSON.stringify(page.blocks[0])).toContain('Resolved')
    expect(h.fake.posts('#search-oncall')).toHaveLength(1)

    const rows = await h.rows([a.alert_id, b.alert_id])
    const u1 = `updated@${Date.parse(worse1.detected_at)}`
    const u2 = `updated@${Date.parse(worse2.detected_at)}`
    for (const s of ['firing', u1, u2, 'resolved']) {
      expect(rows.get(`${a.alert_id}/${s}`)).toMatchObject({ outcome: 'delivered', thread_ts: page.ts, channel: h.fake.channelId('#search-oncall'), channel_name: '#search-oncall' })
    }
    expect(rows.get(`${a.alert_id}/${u1}`)?.message_ts).toBe(worse!.ts)
    expect(rows.get(`${a.alert_id}/${u2}`)?.message_ts).toBe(worseAgain!.ts)
    expect(rows.get(`${b.alert_id}/firing`)?.outcome).toBe('delivered')
    expect(await metric(nt, 'burnwatch_notifier_invalid_alerts_total')).toBe(2)
    expect(await metric(nt, 'burnwatch_slack_deliveries_total', { outcome: 'delivered' })).toBe(5)
    // the same state changes again (a replay): nothing new in Slack
    await h.send([worse1, worse2])
    await until('replay skipped', async () => (await metric(nt, 'burnwatch_slack_deliveries_total', { outcome: 'duplicate' })) >= 2)
    expect(h.fake.replies('#search-oncall', page.ts)).toHaveLength(3)
    expect(h.logs.join('')).toContain('status: Invalid option')
  })

  it("a chart of the break in the page's thread through Slack's external upload, a fresh one with each update", async () => {
    const h = await harness('kafka')
    await h.notifier()
    const a = h.alert({ started_at: '2026-11-22T10:03:00.000Z', detected_at: '2026-11-22T10:09:00.000Z', baseline: 0.0012, current: 0.0017, change_pct: 41.7 })
    await storeSeries(h.ch, a, 0.0012, 0.0017)
    await h.send([a])
    await until('the chart uploaded', () => h.fake.uploads.some((u) => u.completed))
    const page = h.fake.posts('#search-oncall')[0]!
    // the page links to its alert's page on the dashboard
    expect(text(page)).toContain(`/alerts/${encodeURIComponent(a.alert_id)}|`)
    const [chart] = h.fake.uploads
    expect(chart).toMatchObject({ completed: true, channel: h.fake.channelId('#search-oncall'), thread_ts: page.ts, filename: `burnwatch-${a.alert_id}-firing.png` })
    expect(chart!.alt_text).toContain('change point')
    // the three calls of the flow, in order, with the bytes announced arriving in full
    expect(h.fake.calls.map((c) => c.method).filter((m) => m.startsWith('files.') || m === 'upload')).toEqual(['files.getUploadURLExternal', 'upload', 'files.completeUploadExternal'])
    expect(chart!.data!.length).toBe(chart!.length)

    const pic = decodePng(chart!.data!)
    const path = writeArtifact('chart-slack-thread.png', chart!.data!)
    expect([pic.width, pic.height]).toEqual([1800, 720])
    // the same chart rendered here tells where the change point must be; the picture has it there
    const expected = await renderChart(await loadChartInput(h.ch.client, a))
    const seen = readChart(pic, COLORS)
    expect(Math.abs(seen.changeX - expected.marks.changePointX), path).toBeLessThanOrEqual(3)
    expect(seen.changeX).toBeGreaterThan(expected.marks.plot.left)
    expect(seen.changeX).toBeLessThan(expected.marks.plot.left + expected.marks.plot.width)
    expect(seen.seriesAfter.meanRow).toBeLessThan(seen.seriesBefore.meanRow - 20)

    // worse: a reply and a fresh chart in the same thread
    await h.send([{ ...a, status: 'updated', current: 0.0025, change_pct: 108, detected_at: '2026-11-22T10:30:00.000Z' }])
    await until('the second chart', () => h.fake.uploads.filter((u) => u.completed).length === 2)
    expect(h.fake.uploads[1]).toMatchObject({ thread_ts: page.ts, filename: `burnwatch-${a.alert_id}-updated.png` })
    expect(h.fake.uploads[1]!.data!.equals(chart!.data!)).toBe(false)
    expect(h.fake.posts('#search-oncall')).toHaveLength(1)
  })

  it('groups series of one team breaking with the same deployment into one page; a later one joins its thread', async () => {
    const h = await harness('kafka')
    await h.notifier()
    const dep = `deploy-${h.id}`
    const g1 = h.alert({ endpoint: '/v1/a' })
    const g2 = h.alert({ endpoint: '/v1/b', model: 'gpt-4o', started_at: '2026-11-22T10:05:00.000Z' })
    const g3 = h.alert({ endpoint: null, model: null, signal: 'burn_rate', baseline: 40, current: 60, started_at: '2026-11-22T10:01:00.000Z' })
    const other = h.alert({ endpoint: '/v1/c', deployment_ids: [`other-${h.id}`] })
    await h.send([g1, g2, g3, other])
    await until('two pages', () => h.fake.posts('#search-oncall').length === 2)
    await sleep(300)
    const posts = h.fake.posts('#search-oncall')
    expect(posts).toHaveLength(2)
    const grouped = posts.find((p) => text(p).includes(dep))!
    expect(text(grouped)).toContain('3 series broke trend')
    expect(text(grouped)).toContain('/v1/b')
    expect(text(grouped)).toContain('team total')
    const rows = await h.rows([g1.alert_id, g2.alert_id, g3.alert_id, other.alert_id])
    expect(new Set([g1, g2, g3].map((g) => rows.get(`${g.alert_id}/firing`)?.thread_ts))).toEqual(new Set([grouped.ts]))
    expect(rows.get(`${other.alert_id}/firing`)?.thread_ts).not.toBe(grouped.ts)

    // a fourth series with the same deployment, a little later: a reply in the thread, the parent now lists 4
    const g4 = h.alert({ endpoint: '/v1/d', started_at: '2026-11-22T10:06:00.000Z' })
    await h.send([g4])
    await until('reply', () => h.fake.replies('#search-oncall', grouped.ts).length === 1)
    expect(text(h.fake.replies('#search-oncall', grouped.ts)[0]!)).toContain('also broke')
    await until('parent edited', () => grouped.edits === 1)
    expect(text(grouped)).toContain('4 series broke trend')
    expect(h.fake.posts('#search-oncall')).toHaveLength(2)
  })

  it('no duplicate after a crash between Slack answering and the record, nor after a replay of the topic', async () => {
    const h = await harness('kafka')
    const metrics = notifierMetrics(createRegistry())
    const real = createSlackSink({ token: h.fake.token, apiUrl: h.fake.url, logger: h.logger, metrics })
    // a process that dies right after Slack answered: the message is posted, nothing recorded
    let dead = false
    const crashing: PageSink = {
      kind: 'slack',
      async post(p, s) {
        if (dead) throw new Error('process is dead')
        await real.post(p, s)
        dead = true
        throw new Error('simulated crash after Slack answered')
      },
      update: async () => {
        throw new Error('process is dead')
      },
      findPosted: async () => {
        throw new Error('process is dead')
      },
      stop: async () => {},
    }
    const a = h.alert({})
    await h.send([a])
    const n1 = await h.notifier({ sink: crashing })
    await until('the page posted by the dying process', () => h.fake.posts('#search-oncall').length === 1)
    await until('its intent recorded', async () => (await h.rows([a.alert_id])).get(`${a.alert_id}/firing`)?.outcome === 'sending')
    await n1.stop()

    // restart: same group, the batch comes again, the intent makes it look in Slack first
    const n2 = await h.notifier()
    await until('delivery recorded', async () => (await h.rows([a.alert_id])).get(`${a.alert_id}/firing`)?.outcome === 'delivered')
    const page = h.fake.posts('#search-oncall')[0]!
    expect(h.fake.posts('#search-oncall')).toHaveLength(1)
    expect((await h.rows([a.alert_id])).get(`${a.alert_id}/firing`)?.message_ts).toBe(page.ts)
    expect(h.fake.callsOf('conversations.history').length).toBeGreaterThanOrEqual(1)

    await h.send([{ ...a, status: 'updated', change_pct: 90, current: 0.0023 }])
    await until('update threaded', () => h.fake.replies('#search-oncall', page.ts).length === 1)
    await n2.stop()

    // replay: a new group reads the topic from the beginning; everything is already delivered
    const groupId = `replay-${h.id}`
    const n3 = await h.notifier({ groupId })
    await until('replay consumed', async () => (await h.bus.lag(groupId, h.topic)) === 0)
    await sleep(300)
    expect(h.fake.posts('#search-oncall')).toHaveLength(1)
    expect(h.fake.replies('#search-oncall', page.ts)).toHaveLength(1)
    expect(await metric(n3, 'burnwatch_slack_deliveries_total', { outcome: 'duplicate' })).toBe(2)
    expect(await metric(n3, 'burnwatch_slack_deliveries_total', { outcome: 'delivered' })).toBe(0)
  })

  it('a 429 storm: Retry-After is honoured and no page is lost', async () => {
    const h = await harness('kafka')
    const nt = await h.notifier()
    h.fake.failNext(3, { kind: 'rate_limited', retryAfterSec: 1 }, 'chat.postMessage')
    const a = h.alert({})
    const b = h.alert({ team: 'ads', endpoint: 'ads-ranker' })
    const t0 = Date.now()
    await h.send([a, b], 'same-partition')
    await until('both pages', () => h.fake.posts('#search-oncall').length === 1 && h.fake.posts('#ads-oncall').length === 1)
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2900)
    // Slack shows a message a moment before its delivery is recorded (step 4 follows step 3)
    await until('both recorded', async () => [...(await h.rows([a.alert_id, b.alert_id])).values()].filter((r) => r.outcome === 'delivered').length === 2)
    const calls = h.fake.callsOf('chat.postMessage')
    expect(calls.map((c) => c.status)).toEqual([429, 429, 429, 200, 200])
    for (let i = 1; i <= 3; i++) expect(calls[i]!.at - calls[i - 1]!.at).toBeGreaterThanOrEqual(950)
    expect(await metric(nt, 'burnwatch_slack_retries_total', { reason: 'rate_limited' })).toBe(3)
    const rows = await h.rows([a.alert_id, b.alert_id])
    expect(rows.get(`${a.alert_id}/firing`)).toMatchObject({ outcome: 'delivered', attempts: 4 })
    expect(rows.get(`${b.alert_id}/firing`)).toMatchObject({ outcome: 'delivered', attempts: 1 })
  })

  it('5xx then recovery; a 5xx after Slack did post is not posted twice', async () => {
    const h = await harness('kafka')
    const nt = await h.notifier()
    h.fake.failNext(2, { kind: 'http_500' }, 'chat.postMessage')
    const a = h.alert({})
    await h.send([a])
    await until('page', () => h.fake.posts('#search-oncall').length === 1)
    expect(h.fake.callsOf('chat.postMessage').map((c) => c.status)).toEqual([500, 500, 200])
    expect(await metric(nt, 'burnwatch_slack_retries_total', { reason: 'server_error' })).toBe(2)

    h.fake.failNext(1, { kind: 'http_500', afterWork: true }, 'chat.postMessage')
    const b = h.alert({ team: 'ads', endpoint: 'ads-ranker' })
    await h.send([b])
    await until('recorded', async () => (await h.rows([b.alert_id])).get(`${b.alert_id}/firing`)?.outcome === 'delivered')
    expect(h.fake.posts('#ads-oncall')).toHaveLength(1)
    expect((await h.rows([b.alert_id])).get(`${b.alert_id}/firing`)?.message_ts).toBe(h.fake.posts('#ads-oncall')[0]!.ts)
    expect(h.fake.callsOf('conversations.history').length).toBeGreaterThanOrEqual(1)
  })

  it('channel_not_found gives up on that page with one clear log line, and the next team is paged', async () => {
    const h = await harness('kafka')
    const nt = await h.notifier()
    const ghost = h.alert({ team: 'ghost', endpoint: '/v1/ghost' })
    const a = h.alert({})
    await h.send([ghost, a], 'one-partition')
    await until('search page', () => h.fake.posts('#search-oncall').length === 1)
    await until('ghost recorded', async () => (await h.rows([ghost.alert_id])).get(`${ghost.alert_id}/firing`)?.outcome === 'failed')
    expect((await h.rows([ghost.alert_id])).get(`${ghost.alert_id}/firing`)).toMatchObject({ error: 'channel_not_found', attempts: 1, channel_name: '#gone' })
    const errors = h.logs.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level >= 50)
    expect(errors).toHaveLength(1)
    expect(errors[0]!.msg).toContain('#gone')
    expect(errors[0]!.msg).toContain('channel_not_found')
    expect(h.logs.join('')).not.toContain(h.fake.token)
    expect(h.fake.callsOf('chat.postMessage').filter((c) => c.error === 'channel_not_found')).toHaveLength(1)
    expect(await metric(nt, 'burnwatch_slack_deliveries_total', { outcome: 'failed' })).toBe(1)
    expect(await metric(nt, 'burnwatch_slack_permanent_errors_total', { error: 'channel_not_found' })).toBe(1)

    // a replay does not try the failed page again
    await h.send([ghost])
    await h.send([h.alert({ team: 'ads', endpoint: 'after' })])
    await until('ads page', () => h.fake.posts('#ads-oncall').length === 1)
    expect(h.fake.callsOf('chat.postMessage').filter((c) => c.error === 'channel_not_found')).toHaveLength(1)
  })

  it('silenced alerts are recorded, not paged; silences are listed', async () => {
    const h = await harness('kafka')
    await expect(addSilence(h.ch.client, { team: 'search', until: '2020-01-01T00:00:00Z', reason: '' })).rejects.toThrow(ValidationError)
    const s = await addSilence(h.ch.client, { team: 'search', endpoint: '/v1/quiet', until: '1h', reason: 'load test <!channel>' })
    expect((await listSilences(h.ch.client)).map((x) => x.silence_id)).toEqual([s.silence_id])
    expect(formatSilences(await listSilences(h.ch.client))).toContain('load test')
    await h.notifier()
    const quiet = h.alert({ endpoint: '/v1/quiet' })
    const loud = h.alert({ endpoint: '/v1/loud', deployment_ids: [`loud-${h.id}`] })
    await h.send([quiet, loud])
    await until('loud page', () => h.fake.posts('#search-oncall').length === 1)
    await until('quiet recorded', async () => (await h.rows([quiet.alert_id])).get(`${quiet.alert_id}/firing`)?.outcome === 'silenced')
    expect(text(h.fake.posts('#search-oncall')[0]!)).toContain('/v1/loud')
    expect(text(h.fake.posts('#search-oncall')[0]!)).not.toContain('/v1/quiet')
    expect((await h.rows([quiet.alert_id])).get(`${quiet.alert_id}/firing`)?.error).toContain(s.silence_id)
    // its resolution is not paged either
    await h.send([{ ...quiet, status: 'resolved' }])
    await until('resolution recorded', async () => (await h.rows([quiet.alert_id])).get(`${quiet.alert_id}/resolved`)?.outcome === 'silenced')
    expect(h.fake.calls.filter((c) => c.method === 'chat.postMessage')).toHaveLength(1)
  })

  it('an environment set to notify without paging posts to the channel without the mention; production still pages', async () => {
    const h = await harness('in-process')
    await h.notifier()
    const production = h.alert({ endpoint: '/v1/prod' })
    const staging = h.alert({ endpoint: '/v1/stg', environment: 'staging', deployment_ids: [`stg-${h.id}`] })
    await h.send([{ ...staging, alert_id: `${staging.alert_id}@staging` }, production])
    await until('two pages', () => h.fake.posts('#search-oncall').length === 2)
    const [stg, prod] = ['/v1/stg', '/v1/prod'].map((e) => h.fake.posts('#search-oncall').find((p) => text(p).includes(e))!)
    expect(stg!.text).toMatch(/^\[staging\] search: /)
    expect(text(stg!)).not.toContain('<!subteam^S012345>')
    expect(text(prod!)).toContain('<!subteam^S012345>')
  })

  it('without a Slack token pages go to the console stream and pages.ndjson, exactly once', async () => {
    const h = await harness('in-process')
    const out = new PassThrough()
    let printed = ''
    out.on('data', (c: Buffer) => (printed += c.toString()))
    const file = join(h.config.dataDir, 'pages.ndjson')
    const consoleConfig = { ...h.config, slack: { botToken: null, apiUrl: null } }
    const nt = createNotifier({ bus: h.bus, clickhouse: h.ch, config: consoleConfig, logger: h.logger, consoleStream: out, groupId: `console-${h.id}` })
    cleanups.push(() => nt.stop())
    expect(nt.sink.kind).toBe('console')
    await nt.start()
    const a = h.alert({ endpoint: 'a<b>\u001b[2J\u001b]0;pwned\u0007' })
    await storeSeries(h.ch, a, 0.0012, 0.0017)
    await h.send([a, a])
    await until('recorded', async () => (await h.rows([a.alert_id])).get(`${a.alert_id}/firing`)?.outcome === 'delivered')
    await until('the chart written', () => /chart \(.*\): (\S+\.png)/.test(printed))
    expect(printed).toContain('#search-oncall')
    expect(printed).toContain('a<b>')
    // the endpoint's escape sequences never reach the terminal
    expect(printed).not.toContain('\u001b')
    expect(printed).not.toContain('pwned')
    const chartPath = /chart \(.*\): (\S+\.png)/.exec(printed)![1]!
    const abs = chartPath.startsWith('/') ? chartPath : join(process.cwd(), chartPath)
    expect(abs.startsWith(join(h.config.dataDir, 'charts'))).toBe(true)
    expect(decodePng(readFileSync(abs)).width).toBe(1800)
    const lines = readFileSync(file, 'utf8').trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(JSON.parse(lines[0]!)).toMatchObject({ kind: 'post', channel: '#search-oncall' })
    expect(await createConsoleSink({ stream: out, file }).findPosted('#search-oncall', `firing:${a.alert_id}`, Date.now() - 60_000, new AbortController().signal)).not.toBeNull()
  })

  it("the page's ClickHouse query runs and reproduces the series, whatever its names contain", async () => {
    const ch = await openTestClickHouse(inject('clickhouse'))
    cleanups.push(() => ch.close())
    const endpoint = "POST /v1/it's \\ `odd` <!channel>"
    await ch.client.insert({
      table: 'cost_windows',
      values: [
        { team: 'search', endpoint, model: 'm', window_start: '2026-11-22 10:00:00', requests: 10, errors: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, cost_usd: '0.5', cost_sq_sum: 0, unpriced_requests: 0, late_events: 0, deployments: {} },
        { team: 'search', endpoint: 'other', model: 'm', window_start: '2026-11-22 10:00:00', requests: 10, errors: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, cost_usd: '9', cost_sq_sum: 0, unpriced_requests: 0, late_events: 0, deployments: {} },
      ],
      format: 'JSONEachRow',
    })
    const q = reproduceQuery({ team: 'search', endpoint, model: 'm', started_at: '2026-11-22T10:30:00.000Z' })
    const rows = await (await ch.client.query({ query: q, format: 'JSONEachRow' })).json<{ window_requests: number | string; cost_per_request: number | string }>()
    expect(rows).toHaveLength(1)
    expect(Number(rows[0]!.window_requests)).toBe(10)
    expect(Number(rows[0]!.cost_per_request)).toBeCloseTo(0.05, 6)
  })
})
