/**
 * Bench part 6: the server path. Fills a fresh 6-partition topic, drains it with a bare kafkajs
 * consumer, then with `burnwatch aggregate` processes storing into a ClickHouse server over HTTP
 * (CLICKHOUSE_URL, else a local server from the chDB library): one process, then two in one
 * consumer group, each run into a fresh database from the start of the topic. Rates are measured
 * from the moment the first process is running (consumer joined) to a group lag of 0 (everything
 * stored and committed); CPU is read from /proc for each aggregator process and the server.
 * Env: KAFKA_BROKERS (required), CLICKHOUSE_URL, BENCH_SERVER_EVENTS, BENCH_SERIES.
 */
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Kafka, logLevel } from 'kafkajs'
import { createClient } from '@clickhouse/client'
import { groupLag } from '../shared/bus/kafka.ts'
import { topicNames } from '../shared/config.ts'
import { startLocalClickHouse, type LocalClickHouse } from '../infra/clickhouse/local-server.ts'
import { startBurnwatch, type Child } from '../test/support/processes.ts'
import { benchRecords, drainBare, fillTopic } from './lib/kafka.ts'
import { progress, report } from './lib/child.ts'

const P = 'server'
const brokers = (process.env.KAFKA_BROKERS ?? '').split(',').filter(Boolean)
if (!brokers.length) throw new Error('KAFKA_BROKERS is required')
const N = Number(process.env.BENCH_SERVER_EVENTS ?? 200_000)
const SERIES = Number(process.env.BENCH_SERIES ?? 3000)
const PARTITIONS = 6
const GROUP = 'burnwatch-aggregator'

export interface AggregatorServerRun {
  processes: number
  seconds: number
  eventsPerSecond: number
  /** aggregator processes' CPU (user + system) per event, microseconds */
  cpuPerEventUs: number
  /** the ClickHouse server's CPU per event, microseconds (null for an external server) */
  serverCpuPerEventUs: number | null
}

export interface ServerResult {
  events: number
  series: number
  partitions: number
  clickhouse: string
  bare: { seconds: number; eventsPerSecond: number }
  one: AggregatorServerRun
  two: AggregatorServerRun
  /** one aggregator's rate / the bare consumer's */
  ratio: number
  /** two aggregators' rate / one's */
  scaling: number
}

/** CPU seconds (user + system) of a process so far, from /proc/<pid>/stat (Linux; clock ticks of 1/100 s). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / 100
}

const hex = randomBytes(4).toString('hex')
const prefix = `benchsrv${hex}.`
const topic = topicNames(prefix).events
const kafka = new Kafka({ clientId: 'bench-server', brokers, logLevel: logLevel.NOTHING })

let local: LocalClickHouse | null = null
const url = process.env.CLICKHOUSE_URL ?? (local = await startLocalClickHouse()).url
const chEnv = { CLICKHOUSE_URL: url, CLICKHOUSE_USER: process.env.CLICKHOUSE_USER ?? 'default', CLICKHOUSE_PASSWORD: process.env.CLICKHOUSE_PASSWORD ?? '' }
progress(P, `ClickHouse server at ${url}${local ? ` (local server from libchdb.so, ${local.launcher} launcher)` : ''}`)

const { records, bytes } = benchRecords(P, N, SERIES)
const fillSeconds = await fillTopic(P, kafka, topic, PARTITIONS, records)
records.length = 0
progress(P, `topic ${topic}: ${N.toLocaleString('en')} events (${(bytes / 1e6).toFixed(0)} MB), ${PARTITIONS} partitions, filled in ${fillSeconds.toFixed(1)} s`)
const bareSeconds = await drainBare(kafka, topic, N, `bench-bare-${hex}`)
progress(P, `bare: ${(N / bareSeconds).toFixed(0)} events/s (${bareSeconds.toFixed(2)} s)`)

async function runAggregators(k: number): Promise<AggregatorServerRun> {
  const database = `bench_server_${k}_${hex}`
  const env = { ...chEnv, KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: prefix, CLICKHOUSE_DATABASE: database, LOG_LEVEL: 'warn' }
  const children: Child[] = []
  const admin = kafka.admin()
  await admin.connect()
  try {
    for (let i = 0; i < k; i++) children.push(startBurnwatch(['aggregate'], { ...env, BURNWATCH_DATA_DIR: mkdtempSync(join(tmpdir(), 'bw-bench-srv-')) }))
    // the clock starts when the first process consumes; a later one's start and the rebalance it
    // causes are part of the run (as when a second aggregator joins a live group). CPU is counted
    // for each process from its own start of consuming: its boot is not in it.
    let t0 = 0
    const cpu0: (number | null)[] = children.map(() => null)
    const server0 = local ? cpuSeconds(local.pid) : 0
    while (cpu0.some((c) => c === null)) {
      const dead = children.find((c) => c.proc.exitCode !== null)
      if (dead) throw new Error(`an aggregator exited: ${dead.output().slice(-2000)}`)
      children.forEach((c, i) => {
        if (cpu0[i] === null && /running \(/.test(c.output())) {
          cpu0[i] = cpuSeconds(c.proc.pid!)
          t0 ||= performance.now()
        }
      })
      await sleep(10)
    }
    let lastReport = t0
    while ((await groupLag(admin, GROUP, topic)) > 0) {
      await sleep(100)
      if (performance.now() - lastReport > 5000) {
        lastReport = performance.now()
        progress(P, `${k} aggregator(s): lag ${(await groupLag(admin, GROUP, topic)).toLocaleString('en')}`)
      }
    }
    const seconds = (performance.now() - t0) / 1000
    const cpu = children.reduce((s, c, i) => s + cpuSeconds(c.proc.pid!) - cpu0[i]!, 0)
    const serverCpu = local ? cpuSeconds(local.pid) - server0 : null
    for (const c of children) c.kill('SIGTERM')
    for (const c of children) await c.exited
    const client = createClient({ url, username: chEnv.CLICKHOUSE_USER, password: chEnv.CLICKHOUSE_PASSWORD, database })
    const [r] = await (await client.query({ query: 'SELECT count() AS n, uniqExact(event_id) AS ids FROM usage_events', format: 'JSONEachRow' })).json<{ n: number; ids: number }>()
    await client.close()
    if (Number(r?.n) !== N || Number(r?.ids) !== N) throw new Error(`${k} aggregator(s) stored ${r?.n} rows (${r?.ids} ids), expected ${N}`)
    // the next run starts from the beginning of the topic in the same group
    await admin.deleteGroups([GROUP])
    const run = { processes: k, seconds, eventsPerSecond: N / seconds, cpuPerEventUs: (cpu / N) * 1e6, serverCpuPerEventUs: serverCpu === null ? null : (serverCpu / N) * 1e6 }
    progress(P, `${k} aggregator(s) → ClickHouse over HTTP: ${run.eventsPerSecond.toFixed(0)} events/s (${seconds.toFixed(2)} s); aggregator CPU ${run.cpuPerEventUs.toFixed(1)} µs/event${run.serverCpuPerEventUs === null ? '' : `, server CPU ${run.serverCpuPerEventUs.toFixed(1)} µs/event`}`)
    return run
  } finally {
    for (const c of children) c.kill('SIGKILL')
    await admin.disconnect()
  }
}

try {
  const one = await runAggregators(1)
  const two = await runAggregators(2)
  const result: ServerResult = {
    events: N,
    series: SERIES,
    partitions: PARTITIONS,
    clickhouse: local ? `local server from libchdb.so (${local.launcher} launcher)` : 'CLICKHOUSE_URL',
    bare: { seconds: bareSeconds, eventsPerSecond: N / bareSeconds },
    one,
    two,
    ratio: one.eventsPerSecond / (N / bareSeconds),
    scaling: two.eventsPerSecond / one.eventsPerSecond,
  }
  report(result)
} finally {
  await local?.stop()
}
