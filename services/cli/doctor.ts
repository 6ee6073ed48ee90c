/** `burnwatch doctor`: checks Kafka, ClickHouse and Slack and says what is wrong and how to fix it. */
import { Kafka, logLevel } from 'kafkajs'
import { WebClient, LogLevel } from '@slack/web-api'
import type { AppConfig } from '../../shared/config.ts'
import { openClickHouse, redactUrl } from '../../shared/clickhouse/client.ts'
import { scrub } from '../../shared/logger.ts'

export interface Check {
  name: string
  ok: boolean
  detail: string
  fix?: string
}

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let t: NodeJS.Timeout | undefined
  try {
    return await Promise.race([p, new Promise<T>((_, rej) => (t = setTimeout(() => rej(new Error(`${what} did not answer within ${ms / 1000}s`)), ms)))])
  } finally {
    clearTimeout(t)
  }
}

export async function checkKafka(config: AppConfig): Promise<Check> {
  const brokers = config.kafka.brokers
  if (!brokers) return { name: 'Kafka', ok: true, detail: 'KAFKA_BROKERS unset: the embedded in-process bus is used (one process only)' }
  const kafka = new Kafka({ clientId: 'burnwatch-doctor', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 3000, retry: { retries: 1 } })
  const admin = kafka.admin()
  try {
    await withTimeout(admin.connect(), 8000, `Kafka at ${brokers.join(',')}`)
    const cluster = await withTimeout(admin.describeCluster(), 8000, 'Kafka describeCluster')
    const topics = new Set(await admin.listTopics())
    const t = config.kafka.topics
    const missing = [t.events, t.windows, t.alerts, t.deployments, t.deadLetter].filter((x) => !topics.has(x))
    return {
      name: 'Kafka',
      ok: true,
      detail: `${cluster.brokers.length} broker(s) at ${brokers.join(',')}; ${missing.length ? `topics not created yet (the services create them at start): ${missing.join(', ')}` : 'all topics present'}`,
    }
  } catch (err) {
    return { name: 'Kafka', ok: false, detail: `cannot reach Kafka at ${brokers.join(',')}: ${(err as Error).message}`, fix: 'check KAFKA_BROKERS (host:port of the bootstrap servers, comma-separated) and that the brokers run; unset it to use the embedded bus' }
  } finally {
    await admin.disconnect().catch(() => {})
  }
}

export async function checkClickHouse(config: AppConfig): Promise<Check> {
  const c = config.clickhouse
  const where = c.url ? `ClickHouse server at ${redactUrl(c.url)} (user '${c.user}', database '${c.database}')` : `chDB in ${c.dataDir}`
  try {
    const h = await withTimeout(openClickHouse(c), 15_000, where)
    try {
      const rs = await h.client.query({ query: 'SELECT version() AS v, (SELECT count() FROM system.tables WHERE database = currentDatabase()) AS tables', format: 'JSONEachRow' })
      const [r] = await rs.json<{ v: string; tables: number }>()
      const at = h.embeddedServer ? `chDB data in ${c.dataDir}, served by the running burnwatch start at ${h.embeddedServer}` : where
      return { name: 'ClickHouse', ok: true, detail: `${at}: version ${r?.v}, ${r?.tables} tables${Number(r?.tables) === 0 ? ' (run `burnwatch migrate`)' : ''}` }
    } finally {
      await h.close()
    }
  } catch (err) {
    return {
      name: 'ClickHouse',
      ok: false,
      detail: `${where}: ${scrub((err as Error).message, config.secrets)}`,
      fix: c.url ? 'check CLICKHOUSE_URL (e.g. http://localhost:8123), CLICKHOUSE_USER and CLICKHOUSE_PASSWORD; unset CLICKHOUSE_URL to use chDB' : 'another Burnwatch process may hold the chDB folder; stop it or set BURNWATCH_DATA_DIR',
    }
  }
}

export async function checkSlack(config: AppConfig): Promise<Check> {
  if (!config.slack.botToken) return { name: 'Slack', ok: true, detail: 'SLACK_BOT_TOKEN unset: pages go to the console and to data/pages.ndjson' }
  const client = new WebClient(config.slack.botToken, { ...(config.slack.apiUrl ? { slackApiUrl: config.slack.apiUrl } : {}), retryConfig: { retries: 0 }, logLevel: LogLevel.ERROR })
  try {
    const r = await withTimeout(client.auth.test(), 10_000, 'Slack auth.test')
    return { name: 'Slack', ok: true, detail: `authenticated as ${r.user ?? '?'} in team ${r.team ?? '?'}` }
  } catch (err) {
    const code = (err as { data?: { error?: string } }).data?.error ?? (err as Error).message
    return { name: 'Slack', ok: false, detail: `Slack rejected the token or could not be reached: ${scrub(String(code), config.secrets)}`, fix: 'set SLACK_BOT_TOKEN to a bot token (xoxb-…) with chat:write, and invite the bot to the page channels; SLACK_API_URL only for GovSlack or tests' }
  }
}

/** The stages' consumer groups and their input topics. */
const STAGE_GROUPS = (t: AppConfig['kafka']['topics']) => [
  { stage: 'aggregator', group: 'burnwatch-aggregator', topic: t.events },
  { stage: 'detector', group: 'burnwatch-detector', topic: t.windows },
  { stage: 'notifier', group: 'burnwatch-notifier', topic: t.alerts },
]

/**
 * Are the stages moving? With Kafka: each stage's group twice, `sampleMs` apart: records behind
 * and committed offsets that did not move mean the stage is stuck (or down). With a Burnwatch
 * process answering on PORT / METRICS_PORT: its /healthz, which names a crashed consumer or a
 * batch failing for a minute.
 */
export async function checkStages(config: AppConfig, sampleMs = 3000): Promise<Check> {
  const problems: string[] = []
  const seen: string[] = []
  for (const port of [config.http.port, config.http.metricsPort]) {
    if (port === null || port === 0) continue
    try {
      const res = await fetch(`http://${config.http.host}:${port}/healthz`, { signal: AbortSignal.timeout(3000) })
      const body = (await res.json().catch(() => ({}))) as { status?: string; problems?: { component: string; state: string; detail: string; since: string }[] }
      seen.push(`/healthz on port ${port}: ${body.status ?? res.status}`)
      for (const p of body.problems ?? []) problems.push(`${p.component} ${p.state} since ${p.since}: ${p.detail}`)
    } catch {
      // no Burnwatch process answers there
    }
  }
  if (config.kafka.brokers) {
    const kafka = new Kafka({ clientId: 'burnwatch-doctor', brokers: config.kafka.brokers, logLevel: logLevel.NOTHING, connectionTimeout: 3000, retry: { retries: 1 } })
    const admin = kafka.admin()
    try {
      await withTimeout(admin.connect(), 8000, 'Kafka')
      const existing = new Set(await admin.listTopics())
      const groups = STAGE_GROUPS(config.kafka.topics).filter((g) => existing.has(g.topic))
      const sample = async () =>
        Promise.all(
          groups.map(async (g) => {
            const [committed, ends] = await Promise.all([admin.fetchOffsets({ groupId: g.group, topics: [g.topic] }), admin.fetchTopicOffsets(g.topic)])
            const c = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]))
            let lag = 0
            let sum = 0
            for (const e of ends) {
              const done = c.get(e.partition) ?? -1
              sum += Math.max(0, done)
              lag += done < 0 ? Number(e.high) - Number(e.low) : Number(e.high) - done
            }
            return { ...g, lag, committed: sum, started: [...c.values()].some((o) => o >= 0) }
          }),
        )
      const first = await withTimeout(sample(), 8000, 'Kafka offsets')
      await new Promise((r) => setTimeout(r, sampleMs))
      const second = await withTimeout(sample(), 8000, 'Kafka offsets')
      for (const [i, a] of first.entries()) {
        const b = second[i]!
        if (!b.started) continue
        if (b.lag > 0 && b.committed === a.committed) problems.push(`${b.stage} (group ${b.group}) is stuck or down: ${b.lag} records of ${b.topic} behind and no offset committed in ${sampleMs / 1000} s`)
        else seen.push(`${b.stage}: ${b.lag} behind`)
      }
    } catch (err) {
      seen.push(`consumer groups not checked: ${(err as Error).message}`)
    } finally {
      await admin.disconnect().catch(() => {})
    }
  }
  if (problems.length) return { name: 'Stages', ok: false, detail: problems.join('; '), fix: 'see the stage logs: a batch that keeps failing names its error (a dependency down, or a record it cannot process: such records go to the dead-letter topic); restart a crashed stage if it does not restart itself' }
  return { name: 'Stages', ok: true, detail: seen.length ? seen.join('; ') : 'no running stage found to check (none answers on PORT/METRICS_PORT, no consumer group yet)' }
}

export async function doctor(config: AppConfig): Promise<Check[]> {
  return Promise.all([checkKafka(config), checkClickHouse(config), checkSlack(config), checkStages(config)])
}
