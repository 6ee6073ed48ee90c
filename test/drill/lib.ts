/**
 * Shared wiring of the fault drills: stage processes against the real broker (each with its own
 * chDB data dir), a checker process that reads an aggregator's database after it exited (chDB is
 * one engine per process, one process per data dir), an HTTP sender that retries like a client
 * should, Kafka helpers, and the drill result row.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Kafka, logLevel } from 'kafkajs'
import { REPO_ROOT, startBurnwatch, type Child } from '../support/processes.ts'
import { topicNames, type Topics } from '../../shared/config.ts'
import { generateTraffic, DEMO_SERIES, type SeriesSpec } from '../../services/demo/traffic.ts'
import type { UsageEvent } from '../../schemas/usage-event.ts'
import { seriesKey } from '../../shared/producer/series-key.ts'
import { groupLag } from '../../shared/bus/kafka.ts'
import type { RawTotals } from './totals.ts'

export interface DrillResult {
  drill: string
  eventsIn: number
  eventsStored: number
  duplicates: number
  lost: number
  pagesExpected: number
  pagesDelivered: number
  result: 'pass' | 'FAIL' | 'skipped'
  notes: string[]
}

export function result(drill: string, r: Partial<Omit<DrillResult, 'drill' | 'result' | 'notes'>>, notes: string[] = [], extraOk = true): DrillResult {
  const row: DrillResult = { drill, eventsIn: 0, eventsStored: 0, duplicates: 0, lost: 0, pagesExpected: 0, pagesDelivered: 0, result: 'pass', notes, ...r }
  const ok = extraOk && row.duplicates === 0 && row.lost === 0 && row.eventsIn === row.eventsStored && row.pagesExpected === row.pagesDelivered
  row.result = ok ? 'pass' : 'FAIL'
  return row
}

export function log(msg: string): void {
  process.stderr.write(`[drill ${new Date().toISOString().slice(11, 19)}] ${msg}\n`)
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `bw-drill-${label}-`))
}

export function prefix(label: string): string {
  return `drill-${label}-${randomBytes(3).toString('hex')}.`
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const a = srv.address()
      srv.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))))
    })
  })
}

export interface StageEnvOptions {
  brokers: string[]
  prefix: string
  dataDir: string
  port?: number
  slack?: { url: string; token: string }
  config?: string
  extra?: Record<string, string>
}

export function stageEnv(o: StageEnvOptions): Record<string, string> {
  return {
    KAFKA_BROKERS: o.brokers.join(','),
    KAFKA_TOPIC_PREFIX: o.prefix,
    BURNWATCH_DATA_DIR: o.dataDir,
    LOG_LEVEL: 'info',
    ...(o.port !== undefined ? { PORT: String(o.port) } : {}),
    ...(o.slack ? { SLACK_API_URL: o.slack.url, SLACK_BOT_TOKEN: o.slack.token } : {}),
    ...(o.config ? { BURNWATCH_CONFIG: o.config } : {}),
    ...o.extra,
  }
}

/** A stage process that is expected to stay up: waits for its "running" line. */
export async function startStage(stage: string, env: Record<string, string>, timeoutMs = 90_000): Promise<Child> {
  const child = startBurnwatch([stage], env)
  live.add(child)
  void child.exited.then(() => live.delete(child))
  const deadline = Date.now() + timeoutMs
  while (!/running \(/.test(child.output())) {
    if (child.proc.exitCode !== null || child.proc.signalCode !== null) throw new Error(`burnwatch ${stage} exited during start:\n${child.output().slice(-3000)}`)
    if (Date.now() > deadline) throw new Error(`burnwatch ${stage} did not start in ${timeoutMs} ms:\n${child.output().slice(-3000)}`)
    await sleep(50)
  }
  return child
}

const live = new Set<Child>()
process.on('exit', () => {
  for (const c of live) c.kill('SIGKILL')
})

export async function killHard(c: Child): Promise<void> {
  c.kill('SIGKILL')
  await c.exited
}

/** Graceful stop; the exit code must be 0. */
export async function stopGracefully(c: Child, what: string): Promise<void> {
  c.kill('SIGTERM')
  const code = await Promise.race([c.exited, sleep(45_000).then(() => 'timeout' as const)])
  if (code !== 0) throw new Error(`${what} did not stop cleanly (exit ${String(code)}):\n${c.output().slice(-3000)}`)
}

export function alive(c: Child): boolean {
  return c.proc.exitCode === null && c.proc.signalCode === null
}

/** Runs test/drill/chdb-tool.ts in its own process (its own chDB engine) and returns its JSON answer. */
export async function chdbTool<T>(command: string, args: Record<string, unknown>): Promise<T> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['test/drill/chdb-tool.ts', command, JSON.stringify(args)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`chdb-tool ${command} failed (${String(code)}): ${err.slice(-2000)}`))
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? 'null') as T)
      } catch (e) {
        reject(new Error(`chdb-tool ${command}: bad output ${out.slice(-500)}: ${String(e)}`))
      }
    })
  })
}

export interface Totals {
  rows: number
  ids: number
  input: number
  output: number
  windowRequests: number
  /** rows whose event_id is not among the expected ones */
  foreign: number
}

export interface Expected {
  ids: Set<string>
  input: number
  output: number
}

export function expectedOf(events: readonly UsageEvent[]): Expected {
  const ids = new Set<string>()
  let input = 0
  let output = 0
  for (const e of events) {
    if (ids.has(e.event_id)) continue
    ids.add(e.event_id)
    input += e.input_tokens
    output += e.output_tokens
  }
  return { ids, input, output }
}

/** Reads an aggregator's totals from its chDB data dir in a checker process; compares them with the expected events. */
export async function checkAggregatorTotals(dataDir: string, expected: Expected, database = 'burnwatch'): Promise<TotalsCheck> {
  return compareTotals(await chdbTool<RawTotals>('totals', { dataDir, database }), expected)
}

export interface TotalsCheck {
  totals: Totals
  stored: number
  duplicates: number
  lost: number
  exact: boolean
  notes: string[]
}

/** Stored totals against the expected events: lost, duplicated, foreign ids, token sums, rollups. */
export function compareTotals(t: RawTotals, expected: Expected): TotalsCheck {
  const stored = new Set(t.idList)
  let lost = 0
  for (const id of expected.ids) if (!stored.has(id)) lost++
  let foreign = 0
  for (const id of stored) if (!expected.ids.has(id)) foreign++
  const totals: Totals = { rows: t.rows, ids: t.ids, input: t.input, output: t.output, windowRequests: t.windowRequests, foreign }
  const duplicates = t.rows - t.ids
  const notes: string[] = []
  if (t.input !== expected.input || t.output !== expected.output) notes.push(`token sums differ: input ${t.input} vs ${expected.input}, output ${t.output} vs ${expected.output}`)
  // the materialized views of usage_events must agree with it exactly
  if (t.windowRequests !== t.rows || t.hourlyRequests !== t.rows || t.dailyRequests !== t.rows) {
    notes.push(`materialized views differ from usage_events (${t.rows} rows): cost_windows ${t.windowRequests}, cost_hourly ${t.hourlyRequests}, cost_daily ${t.dailyRequests} requests`)
  }
  if (foreign) notes.push(`${foreign} unexpected event_ids stored`)
  return { totals, stored: t.ids, duplicates, lost, exact: notes.length === 0, notes }
}

// ---------------------------------------------------------------------------------------------
// Kafka

export function kafkaClient(brokers: string[]): Kafka {
  return new Kafka({ clientId: 'burnwatch-drill', brokers, logLevel: logLevel.NOTHING, retry: { retries: 20, initialRetryTime: 200, maxRetryTime: 3000 } })
}

export function topicsOf(p: string): Topics {
  return topicNames(p)
}


export async function waitUntil(what: string, fn: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let last: unknown = null
  while (Date.now() < deadline) {
    try {
      if (await fn()) return
      last = null
    } catch (err) {
      last = err
    }
    await sleep(everyMs)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}

/** The offsets a group committed on a topic, summed over its partitions. */
export async function committedOffsets(brokers: string[], groupId: string, topic: string): Promise<number> {
  const admin = kafkaClient(brokers).admin()
  await admin.connect()
  try {
    const o = await admin.fetchOffsets({ groupId, topics: [topic] })
    return (o[0]?.partitions ?? []).reduce((s, p) => s + Math.max(0, Number(p.offset)), 0)
  } finally {
    await admin.disconnect()
  }
}

export async function waitForDrain(brokers: string[], groupId: string, topic: string, timeoutMs: number): Promise<void> {
  const admin = kafkaClient(brokers).admin()
  await admin.connect()
  try {
    await waitUntil(`${groupId} to drain ${topic}`, async () => (await groupLag(admin, groupId, topic)) === 0, timeoutMs, 300)
  } finally {
    await admin.disconnect()
  }
}

/** Reads every record of a topic from the beginning to its current end. */
export async function readTopic(brokers: string[], topic: string): Promise<{ value: string; headers: Record<string, string> }[]> {
  const kafka = kafkaClient(brokers)
  const admin = kafka.admin()
  await admin.connect()
  const ends = await admin.fetchTopicOffsets(topic)
  await admin.disconnect()
  const total = ends.reduce((s, e) => s + Number(e.high) - Number(e.low), 0)
  const out: { value: string; headers: Record<string, string> }[] = []
  if (!total) return out
  const consumer = kafka.consumer({ groupId: `drill-reader-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic, fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ message }) => {
      out.push({
        value: message.value?.toString() ?? '',
        headers: Object.fromEntries(Object.entries(message.headers ?? {}).map(([k, v]) => [k, Buffer.isBuffer(v) ? v.toString() : String(v ?? '')])),
      })
    },
  })
  await waitUntil(`reading ${total} records of ${topic}`, () => out.length >= total, 60_000, 100)
  await consumer.disconnect()
  return out
}

// ---------------------------------------------------------------------------------------------
// load

/** Realistic events (token counts from the Azure LLM inference trace 2023, CC-BY-4.0), in the recent past. */
export function realisticEvents(label: string, approx: number, seed = 7): UsageEvent[] {
  const minutes = 30
  const perMinuteTotal = DEMO_SERIES.reduce((s, x) => s + x.perMinute, 0)
  const scale = approx / minutes / perMinuteTotal
  const series: SeriesSpec[] = DEMO_SERIES.map((s) => ({ ...s, perMinute: s.perMinute * scale }))
  const start = Date.now() - (minutes + 2) * 60_000
  const out: UsageEvent[] = []
  for (const e of generateTraffic({ start, minutes, series, seed })) out.push({ ...e, event_id: `${label}-${e.event_id}` })
  return out
}

export interface SendStats {
  requests: number
  retries: number
  accepted: number
  errors: Record<string, number>
}

/**
 * Sends events to the ingest API in batches with the retry a client should do: a connection
 * error, a 5xx or a 503 resends the same batch (same event_ids, deduplicated downstream).
 */
export async function sendOverHttp(url: () => string, events: readonly UsageEvent[], o: { batch?: number; concurrency?: number; key?: string; onProgress?: (sent: number) => void; ratePerSec?: number; onStatus?: (status: number, retryAfter: string | null) => void } = {}): Promise<SendStats> {
  const size = o.batch ?? 200
  const batches: UsageEvent[][] = []
  for (let i = 0; i < events.length; i += size) batches.push(events.slice(i, i + size))
  const stats: SendStats = { requests: 0, retries: 0, accepted: 0, errors: {} }
  let next = 0
  const started = Date.now()
  const worker = async () => {
    for (;;) {
      const i = next++
      const b = batches[i]
      if (!b) return
      if (o.ratePerSec) {
        const due = started + ((i * size) / o.ratePerSec) * 1000
        if (due > Date.now()) await sleep(due - Date.now())
      }
      const body = JSON.stringify(b)
      for (let attempt = 0; ; attempt++) {
        stats.requests++
        let status = 0
        try {
          const res = await fetch(`${url()}/v1/events`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', ...(o.key ? { authorization: `Bearer ${o.key}` } : {}) },
            body,
            signal: AbortSignal.timeout(40_000),
          })
          status = res.status
          o.onStatus?.(status, res.headers.get('retry-after'))
          await res.arrayBuffer()
        } catch (err) {
          const code = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name
          stats.errors[code] = (stats.errors[code] ?? 0) + 1
        }
        if (status === 202) {
          stats.accepted += b.length
          o.onProgress?.(stats.accepted)
          break
        }
        if (status >= 400 && status < 500) throw new Error(`ingest refused a valid batch with ${status}`)
        if (status) stats.errors[String(status)] = (stats.errors[String(status)] ?? 0) + 1
        stats.retries++
        if (attempt > 400) throw new Error('a batch was not accepted after 400 attempts')
        await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 4)))
      }
    }
  }
  await Promise.all(Array.from({ length: o.concurrency ?? 2 }, worker))
  return stats
}

/** Produces events straight to usage.events (acks=all), keyed by series like the ingest path. */
export async function produceEvents(brokers: string[], topic: string, events: readonly UsageEvent[], o: { chunk?: number; ratePerSec?: number } = {}): Promise<void> {
  const producer = kafkaClient(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const chunk = o.chunk ?? 1000
  const started = Date.now()
  try {
    for (let i = 0; i < events.length; i += chunk) {
      if (o.ratePerSec) {
        const due = started + (i / o.ratePerSec) * 1000
        if (due > Date.now()) await sleep(due - Date.now())
      }
      await producer.send({
        topic,
        acks: -1,
        messages: events.slice(i, i + chunk).map((e) => ({ key: seriesKey(e), value: JSON.stringify(e) })),
      })
    }
  } finally {
    await producer.disconnect()
  }
}

export async function ensureTopic(brokers: string[], topic: string, partitions = 3): Promise<void> {
  const admin = kafkaClient(brokers).admin()
  await admin.connect()
  try {
    const existing = await admin.listTopics()
    if (!existing.includes(topic)) await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true })
  } finally {
    await admin.disconnect()
  }
}
