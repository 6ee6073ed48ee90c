/**
 * The notifier: consumes alert records (topic `cost.alerts`), pages the owning team in Slack
 * (or the console), threads updates and the resolution under the page, edits the page to show
 * the current state, and records every outcome in ClickHouse `alert_deliveries`.
 *
 * Exactly once per alert state change (alert_id, status, change: sink.ts changeOf), per batch, in this order:
 *   1. look up: the in-memory cache of final outcomes, then alert_deliveries (the truth, shared
 *      by restarts and replicas); delivered, silenced or failed → skip (counted as duplicate).
 *   2. record intent: a 'sending' row (channel, thread) before calling Slack.
 *   3. send: chat.postMessage (the sink retries 429 after Retry-After, 5xx and network errors
 *      and, before re-posting after an ambiguous failure, looks for the message in Slack).
 *   4. record: the delivered row with message_ts/thread_ts, after Slack answered ok.
 *   5. return: only then does the bus commit the batch's offsets (write, then commit).
 * Steps 1–4 are the `store` step of the stage runner (shared/stage/runner.ts), which owns the
 * batch loop: retries of what is retriable, the heartbeat while Slack makes us wait, and the
 * dead-letter topic for records that are not alert records.
 * A crash between 3 and 4 is the only window for a duplicate. It is narrowed by 2: on the
 * next run a 'sending' row makes the notifier search the channel (or thread) history for the
 * message metadata carrying this state change and record it instead of posting again.
 * A crash after 4 and before 5 redelivers the batch, and 1 skips it. A permanent Slack refusal
 * is recorded as 'failed' (one log line, a metric) and the batch goes on; a retriable failure
 * past the sink's deadline fails the batch, so nothing is committed and nothing is lost.
 */
import { join } from 'node:path'
import type { Writable } from 'node:stream'
import type { ClickHouseClient } from '@clickhouse/client'
import { AlertRecord } from '../../schemas/alert.ts'
import type { Bus, BusBatch, BusMessage } from '../../shared/bus/port.ts'
import { createStageRunner, type StagePlan, type StageRunner } from '../../shared/stage/runner.ts'
import { environmentPages, teamSettings, type AppConfig } from '../../shared/config.ts'
import { errorMessage } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import { createRegistry, type Registry } from '../../shared/metrics.ts'
import { createChartAttacher } from './attach-chart.ts'
import { createConsoleSink } from './console.ts'
import { createClickHouseDeliveryStore, type DeliveryRow, type DeliveryStore, type Outcome } from './deliveries.ts'
import { notifierMetrics, type NotifierMetrics } from './metrics.ts'
import { renderPage, renderThreadReply, type RenderOptions, type SlackMessage } from './render.ts'
import { alertDeliveryKey, changeOf, deliveryKey, PageDeliveryError, type PageRef, type PageSink } from './sink.ts'
import { listSilences, silenceMatches, type Silence } from './silences.ts'
import { createSlackSink } from './slack.ts'

export const NOTIFIER_GROUP_ID = 'burnwatch-notifier'

export interface NotifierDeps {
  bus: Bus
  clickhouse: { client: ClickHouseClient }
  config: AppConfig
  logger: Logger
  /** where pages go; default Slack when a bot token is configured, else the console */
  sink?: PageSink
  /** clock for silences (ms since epoch); default Date.now */
  now?: () => number
  /** metrics registry; default a new one (see `notifier.registry`) */
  registry?: Registry
  /** the console sink's stream when no sink and no Slack token; default process.stdout */
  consoleStream?: Writable
  /** consumer group; default burnwatch-notifier */
  groupId?: string
  /** a series breaking with the same first deployment joins a page posted this recently; default 10 min */
  groupWindowMs?: number
  /** ... if its change point is within this of the page's; default 5 min */
  groupStartToleranceMs?: number
}

export interface Notifier {
  start(): Promise<void>
  /** stops intake, lets the batch in flight finish or abort (uncommitted), closes the sink. Idempotent. */
  stop(): Promise<void>
  readonly registry: Registry
  readonly sink: PageSink
}

const STATUS_RANK = { firing: 0, updated: 1, resolved: 2 } as const
const FINAL: ReadonlySet<Outcome> = new Set(['delivered', 'silenced', 'failed'])
const CACHE_LIMIT = 20_000

/** Series of one team whose break starts with the same deployment share a page. */
export function groupKeyOf(a: AlertRecord): string {
  const dep = a.deployment_ids[0]
  // environments are paged apart: a staging break never joins a production page
  const env = a.environment === undefined || a.environment === 'production' ? '' : `\u0000${a.environment}`
  return dep === undefined ? '' : `${a.team}\u0000${dep}${env}`
}

export function createNotifier(deps: NotifierDeps): Notifier {
  const { bus, config } = deps
  const log = deps.logger.child({ component: 'notifier' })
  const registry = deps.registry ?? createRegistry()
  const metrics: NotifierMetrics = notifierMetrics(registry)
  const now = deps.now ?? Date.now
  const groupWindowMs = deps.groupWindowMs ?? 10 * 60_000
  const tolerance = deps.groupStartToleranceMs ?? 5 * 60_000
  const sink: PageSink =
    deps.sink ??
    (config.slack.botToken
      ? createSlackSink({ token: config.slack.botToken, apiUrl: config.slack.apiUrl, logger: deps.logger, metrics })
      : createConsoleSink({ stream: deps.consoleStream ?? process.stdout, file: join(config.dataDir, 'pages.ndjson') }))
  const store: DeliveryStore = createClickHouseDeliveryStore(deps.clickhouse.client)
  const charts = createChartAttacher({ client: deps.clickhouse.client, sink, logger: deps.logger })
  const abort = new AbortController()

  /** final outcomes only: a positive fact never goes stale, a missing one is looked up */
  const cache = new Map<string, DeliveryRow>()
  /** per alert, its latest delivered message with a thread (the page, or a reply in it) */
  const threads = new Map<string, DeliveryRow>()
  const remember = (r: DeliveryRow) => {
    if (!FINAL.has(r.outcome)) return
    const k = deliveryKey(r.alert_id, r.status, r.change)
    cache.delete(k)
    cache.set(k, r)
    if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value!)
    if (r.outcome === 'delivered' && r.thread_ts) {
      threads.delete(r.alert_id)
      threads.set(r.alert_id, r)
      if (threads.size > CACHE_LIMIT) threads.delete(threads.keys().next().value!)
    }
  }

  /** strictly increasing timestamps, so the intent row never ties with the outcome row */
  let lastStamp = 0
  const stamp = () => {
    lastStamp = Math.max(Date.now(), lastStamp + 1)
    return new Date(lastStamp).toISOString()
  }

  const renderOpts = (a: AlertRecord): RenderOptions => ({
    deploymentUrlTemplate: config.file.deployment_url_template ?? null,
    clickhouseConsoleUrl: config.file.clickhouse_console_url ?? null,
    // an environment set to notify without paging (config `environments: [{name, page: false}]`) gets no mention
    mention: environmentPages(config.file, a.environment ?? 'production') ? teamSettings(config.file, a.team).mention : null,
    publicUrl: config.publicUrl,
  })

  const row = (a: AlertRecord, f: { outcome: Outcome; channel: string; channelName: string; messageTs?: string; threadTs?: string; error?: string; attempts?: number }): DeliveryRow => ({
    alert_id: a.alert_id,
    status: a.status,
    change: changeOf(a),
    team: a.team,
    channel: f.channel,
    channel_name: f.channelName,
    message_ts: f.messageTs ?? '',
    thread_ts: f.threadTs ?? '',
    outcome: f.outcome,
    error: f.error ?? '',
    attempts: f.attempts ?? 0,
    delivered_at: stamp(),
    alert_json: JSON.stringify(a),
    group_key: groupKeyOf(a),
  })

  async function record(rows: DeliveryRow[]) {
    await store.record(rows)
    for (const r of rows) {
      remember(r)
      if (FINAL.has(r.outcome)) metrics.deliveries.inc({ outcome: r.outcome })
    }
  }

  // ---------------------------------------------------------------------------------------------
  // pages

  /** The page's series with their latest record, in the order they joined it. */
  async function pageMembers(ref: PageRef): Promise<AlertRecord[]> {
    const latest = new Map<string, AlertRecord>()
    for (const r of await store.pageMembers(ref.channel, ref.ts)) {
      const parsed = AlertRecord.safeParse(JSON.parse(r.alert_json || 'null'))
      if (!parsed.success) continue
      const prev = latest.get(r.alert_id)
      const later = prev !== undefined && STATUS_RANK[parsed.data.status] === STATUS_RANK[prev.status] && Date.parse(parsed.data.detected_at) > Date.parse(prev.detected_at)
      if (!prev || STATUS_RANK[parsed.data.status] > STATUS_RANK[prev.status] || later) latest.set(r.alert_id, parsed.data)
    }
    return [...latest.values()]
  }

  /** Edits the parent to show the current state; idempotent, so a failure only leaves it stale. */
  async function refreshParent(ref: PageRef) {
    const members = await pageMembers(ref)
    if (!members.length) return
    const msg = renderPage(members, renderOpts(members[0]!))
    try {
      await sink.update(ref, { ...msg, deliveries: members.map((m) => deliveryKey(m.alert_id, 'firing')) }, abort.signal)
    } catch (err) {
      if (err instanceof PageDeliveryError && !err.retriable) log.warn({ channel: ref.channel, ts: ref.ts, slack_error: err.code }, `could not edit the page to show its current state: ${err.message}`)
      else throw err
    }
  }

  /** An earlier page of the same team and first deployment, posted recently, with a close change point. */
  async function findGroupPage(a: AlertRecord, channelName: string): Promise<PageRef | null> {
    const gk = groupKeyOf(a)
    if (!gk) return null
    const started = Date.parse(a.started_at)
    for (const r of await store.recentGroupPages(gk, Date.now() - groupWindowMs)) {
      if (r.channel_name !== channelName || !r.thread_ts) continue
      const other = AlertRecord.safeParse(JSON.parse(r.alert_json || 'null'))
      if (other.success && Math.abs(Date.parse(other.data.started_at) - started) <= tolerance) return { channel: r.channel, ts: r.thread_ts }
    }
    return null
  }

  /**
   * Steps 2–3 for one message carrying `alerts`: if an earlier run left a 'sending' intent,
   * look for the message in Slack first; else record the intent and post.
   */
  async function sendOnce(alerts: AlertRecord[], pending: Map<string, DeliveryRow>, target: { channel: string; channelName: string; threadTs: string | null }, msg: SlackMessage): Promise<{ ref: PageRef; attempts: number }> {
    const keys = alerts.map(alertDeliveryKey)
    for (const k of keys) {
      const intent = pending.get(k)
      if (!intent) continue
      const found = await sink.findPosted(intent.channel || target.channel, k, Date.parse(intent.delivered_at), abort.signal, intent.thread_ts || null)
      if (found) {
        log.info({ key: k, channel: found.channel, ts: found.ts }, 'found the message of an interrupted delivery in Slack; recording it instead of posting again')
        return { ref: found, attempts: intent.attempts }
      }
    }
    // 2. intent
    await store.record(alerts.map((a) => row(a, { outcome: 'sending', channel: target.channel, channelName: target.channelName, threadTs: target.threadTs ?? '' })))
    // 3. send
    const posted = await sink.post({ channel: target.channel, threadTs: target.threadTs, deliveries: keys, ...msg }, abort.signal)
    return { ref: { channel: posted.channel, ts: posted.ts }, attempts: posted.attempts }
  }

  async function failed(alerts: AlertRecord[], channelName: string, err: PageDeliveryError) {
    const a = alerts[0]!
    log.error(
      { alert_id: a.alert_id, alerts: alerts.length, status: a.status, team: a.team, channel: channelName, slack_error: err.code, attempts: err.attempts },
      `giving up on the ${a.status} page of team ${a.team} in ${channelName}: ${err.message}; other pages go on`,
    )
    await record(alerts.map((x) => row(x, { outcome: 'failed', channel: channelName, channelName, error: err.code, attempts: err.attempts })))
  }

  /** A new page for `alerts` (one series, or several of one team with the same deployment). */
  async function postPage(alerts: AlertRecord[], pending: Map<string, DeliveryRow>, channelName: string) {
    const { ref, attempts } = await sendOnce(alerts, pending, { channel: channelName, channelName, threadTs: null }, renderPage(alerts, renderOpts(alerts[0]!)))
    // 4. record
    await record(alerts.map((a) => row(a, { outcome: 'delivered', channel: ref.channel, channelName, messageTs: ref.ts, threadTs: ref.ts, attempts })))
    log.info({ alert_ids: alerts.map((a) => a.alert_id), team: alerts[0]!.team, channel: channelName, ts: ref.ts }, `paged ${alerts[0]!.team} in ${channelName}`)
    await charts.attach(alerts, ref, abort.signal)
  }

  /** A reply in an existing page's thread, then the parent edited to show the current state. */
  async function reply(a: AlertRecord, page: PageRef, pending: Map<string, DeliveryRow>, channelName: string, previous: AlertRecord | null) {
    const { ref, attempts } = await sendOnce([a], pending, { channel: page.channel, channelName, threadTs: page.ts }, renderThreadReply(a, renderOpts(a), previous))
    await record([row(a, { outcome: 'delivered', channel: page.channel, channelName, messageTs: ref.ts, threadTs: page.ts, attempts })])
    await refreshParent(page)
    await charts.attach([a], page, abort.signal)
    log.info({ alert_id: a.alert_id, status: a.status, team: a.team, channel: channelName, thread_ts: page.ts }, `${a.status} of ${a.team} threaded under its page`)
  }

  // ---------------------------------------------------------------------------------------------
  // a batch

  /** The alert record, or why it is not one (it goes to the dead-letter topic). */
  function parse(m: BusMessage): AlertRecord | string {
    let raw: unknown
    try {
      raw = JSON.parse(m.value)
    } catch (err) {
      metrics.invalidAlerts.inc()
      log.warn({ topic: m.topic, partition: m.partition, offset: m.offset, reason: `not JSON: ${errorMessage(err)}` }, 'an alert record that is not JSON; set aside on the dead-letter topic')
      return `alert record is not JSON: ${errorMessage(err)}`
    }
    const r = AlertRecord.safeParse(raw)
    if (!r.success) {
      metrics.invalidAlerts.inc()
      const reason = r.error.issues.map((i) => `${i.path.join('.') || '(record)'}: ${i.message}`).join('; ')
      log.warn({ topic: m.topic, partition: m.partition, offset: m.offset, reason }, 'an invalid alert record; set aside on the dead-letter topic')
      return `invalid alert record: ${reason}`
    }
    return r.data
  }

  async function handleRecords(records: AlertRecord[]) {
    // 1. look up what is already done (the cache holds final outcomes only)
    const keyOf = alertDeliveryKey
    const unknownIds = [...new Set(records.filter((a) => !cache.has(keyOf(a))).map((a) => a.alert_id))]
    const pending = new Map<string, DeliveryRow>()
    for (const r of await store.latest(unknownIds)) {
      remember(r)
      if (r.outcome === 'sending') pending.set(deliveryKey(r.alert_id, r.status, r.change), r)
    }
    const firingRow = (alertId: string) => cache.get(deliveryKey(alertId, 'firing'))
    const threadOf = (alertId: string): DeliveryRow | undefined => threads.get(alertId)

    let silences: Silence[] | null = null
    const silencedBy = async (a: AlertRecord): Promise<Silence | null> => {
      silences ??= await listSilences(deps.clickhouse.client, { activeAt: now(), team: '' })
      return silences.find((s) => silenceMatches(s, a, now())) ?? null
    }

    const done = new Set<string>()
    for (let i = 0; i < records.length; i++) {
      if (abort.signal.aborted) throw new PageDeliveryError('notifier stopping', { code: 'stopped', retriable: true, attempts: 0 })
      const a = records[i]!
      const k = keyOf(a)
      if (done.has(k)) continue
      done.add(k)
      if (cache.has(k)) {
        metrics.deliveries.inc({ outcome: 'duplicate' })
        log.debug({ alert_id: a.alert_id, status: a.status }, 'already handled; skipping')
        continue
      }
      const channelName = teamSettings(config.file, a.team).slackChannel
      const silence = await silencedBy(a)
      if (silence) {
        await record([row(a, { outcome: 'silenced', channel: channelName, channelName, error: `silence ${silence.silence_id} until ${silence.until}: ${silence.reason}` })])
        log.info({ alert_id: a.alert_id, status: a.status, team: a.team, silence_id: silence.silence_id }, 'alert silenced; not paged')
        continue
      }

      if (a.status === 'firing') {
        // several series of this team in this batch with the same first deployment and a close change point: one page
        const group = [a]
        const gk = groupKeyOf(a)
        if (gk) {
          for (const b of records.slice(i + 1)) {
            const kb = keyOf(b)
            if (b.status !== 'firing' || done.has(kb) || cache.has(kb) || groupKeyOf(b) !== gk) continue
            if (teamSettings(config.file, b.team).slackChannel !== channelName) continue
            if (Math.abs(Date.parse(b.started_at) - Date.parse(a.started_at)) > tolerance) continue
            if (await silencedBy(b)) continue
            group.push(b)
            done.add(kb)
          }
        }
        try {
          const page = await findGroupPage(a, channelName)
          if (page) for (const m of group) await reply(m, page, pending, channelName, null)
          else await postPage(group, pending, channelName)
        } catch (err) {
          if (err instanceof PageDeliveryError && !err.retriable) await failed(group, channelName, err)
          else throw err
        }
        continue
      }

      // updated / resolved: into the page's thread
      const parent = threadOf(a.alert_id)
      try {
        if (parent) {
          const members = await pageMembers({ channel: parent.channel, ts: parent.thread_ts })
          await reply(a, { channel: parent.channel, ts: parent.thread_ts }, pending, channelName, members.find((m) => m.alert_id === a.alert_id) ?? null)
        } else {
          const f = firingRow(a.alert_id)
          if (a.status === 'resolved' && f && f.outcome !== 'delivered') {
            // nobody was paged for this break: nothing to resolve in Slack
            await record([row(a, { outcome: f.outcome === 'silenced' ? 'silenced' : 'failed', channel: channelName, channelName, error: `no page to resolve: its firing was ${f.outcome}` })])
          } else {
            // the break was never paged (silence ended, or it fired before this notifier existed): page it now in its current state
            await postPage([a], pending, channelName)
          }
        }
      } catch (err) {
        if (err instanceof PageDeliveryError && !err.retriable) await failed([a], channelName, err)
        else throw err
      }
    }
  }

  // one batch at a time across partitions: grouping and threading see each other's pages
  let chain: Promise<void> = Promise.resolve()
  const serialized = (fn: () => Promise<void>): Promise<void> => {
    const p = chain.then(fn)
    chain = p.catch(() => {})
    return p
  }

  /** Plans a batch for the stage runner: invalid records are set aside; the store step is the delivery (steps 1–4 above). */
  async function plan(batch: BusBatch): Promise<StagePlan> {
    const deadLetters: NonNullable<StagePlan['deadLetters']> = []
    const records: AlertRecord[] = []
    for (const m of batch.messages) {
      const r = parse(m)
      if (typeof r === 'string') deadLetters.push({ message: m, reason: r })
      else records.push(r)
    }
    return {
      deadLetters,
      store: async () => {
        try {
          await serialized(async () => {
            if (records.length) await handleRecords(records)
          })
        } catch (err) {
          if (abort.signal.aborted) throw new PageDeliveryError('notifier stopping', { code: 'stopped', retriable: true, attempts: 0 })
          throw err
        }
      },
    }
  }

  let runner: StageRunner | null = null
  let stopping: Promise<void> | null = null

  return {
    registry,
    sink,
    async start() {
      if (runner) return
      runner = createStageRunner({ stage: 'notifier', bus, groupId: deps.groupId ?? NOTIFIER_GROUP_ID, topics: [config.kafka.topics.alerts], deadLetterTopic: config.kafka.topics.deadLetter, fromBeginning: true, maxBatchMessages: 500, logger: deps.logger, registry, plan })
      await runner.start()
      log.info({ topic: config.kafka.topics.alerts, sink: sink.kind }, `notifier started; pages go to ${sink.kind === 'slack' ? 'Slack' : 'the console'}`)
    },
    stop() {
      stopping ??= (async () => {
        // stop intake and abort Slack waits (an aborted batch is not committed), then close the sink
        abort.abort()
        await runner?.stop()
        await sink.stop()
        log.info('notifier stopped')
      })()
      return stopping
    },
  }
}
