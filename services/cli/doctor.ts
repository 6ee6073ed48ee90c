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

export async function doctor(config: AppConfig): Promise<Check[]> {
  return Promise.all([checkKafka(config), checkClickHouse(config), checkSlack(config)])
}
