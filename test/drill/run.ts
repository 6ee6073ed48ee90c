/**
 * `npm run drill`: fault drills against a real Kafka broker and chDB (DESIGN.md "Measures").
 *
 *   npm run drill                      every drill
 *   npm run drill -- kill-notifier ... only the named drills
 *
 * The broker is a local single-node KRaft broker started here (startLocalKafka), so the broker
 * drill can SIGKILL and restart it; with KAFKA_BROKERS set that broker is used and the broker
 * drill is skipped (it cannot be killed from here). Prints a table and, as its last line, the
 * same rows as one JSON line. Exit code 1 when any drill failed.
 */
import { startLocalKafka, type LocalKafka } from '../../infra/kafka/local-broker.ts'
import { log, result, type DrillResult } from './lib.ts'
import { killAggregator, killDetector, killIngest, killNotifier } from './kill-stages.ts'
import { brokerRestart } from './broker.ts'
import { clickhouseOutage, slackOutage } from './outages.ts'
import { hostileInput } from './hostile.ts'
import { securitySummary } from './security-summary.ts'
import { fastClock, kcatProducers, oldMonths } from './stage-runner.ts'
import { alertsRefusal } from './alerts-refusal.ts'
import { clickhouseOutageBreak } from './outage-break.ts'
import { seriesFlood, seriesFloodEmbedded } from './series-flood.ts'
import { clickhouseKill, leaderKill, scaleOut, stopTopologyDrills } from './topology.ts'

interface Env {
  brokers: string[]
  broker: LocalKafka | null
}

// kafkajs schedules a negative timeout on reconnects; the warning is noise in the drill output
process.removeAllListeners('warning')
process.on('warning', (w) => {
  if (w.name !== 'TimeoutNegativeWarning') process.stderr.write(`${w.name}: ${w.message}\n`)
})

// Ctrl-C or a kill: exit through process.exit so the stage processes started here are killed too
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130))

type Drill = (env: Env) => Promise<DrillResult | DrillResult[]>

const drills: Record<string, Drill> = {
  'kill-ingest': (e) => killIngest(e.brokers),
  'kill-aggregator': (e) => killAggregator(e.brokers),
  'kill-detector': (e) => killDetector(e.brokers),
  'kill-notifier': (e) => killNotifier(e.brokers),
  broker: async (e) => (e.broker ? brokerRestart(e.brokers, e.broker) : { ...result('broker SIGKILL + restart', {}, ['skipped: KAFKA_BROKERS is set, the drill cannot kill an external broker']), result: 'skipped' as const }),
  // both outages are a minute of mostly waiting: they run side by side
  outages: async (e) => Promise.all([clickhouseOutage(e.brokers), slackOutage(e.brokers)]),
  hostile: (e) => hostileInput(e.brokers),
  security: (e) => securitySummary(e.brokers),
  kcat: (e) => kcatProducers(e.brokers),
  'old-months': (e) => oldMonths(e.brokers),
  'fast-clock': (e) => fastClock(e.brokers),
  'alerts-refusal': (e) => alertsRefusal(e.brokers),
  // a ClickHouse server (infra/clickhouse/local-server.ts) stopped for 60 s under stage processes
  'outage-break': (e) => clickhouseOutageBreak(e.brokers),
  // Kafka, with a kill -9 of the aggregator during the flood
  'series-flood': (e) => seriesFlood(e.brokers),
  // `burnwatch start` (in-process bus): the same flood, no kill (the embedded bus loses acknowledged events on a crash)
  'series-flood-embedded': () => seriesFloodEmbedded(),
  // a ClickHouse server (infra/clickhouse/local-server.ts); a three-broker cluster started on first use
  'clickhouse-kill': (e) => clickhouseKill(e.brokers),
  'leader-kill': () => leaderKill(),
  'scale-out': () => scaleOut(),
}

function table(rows: DrillResult[]): string {
  const head = ['drill', 'events in', 'events stored', 'duplicates', 'lost', 'pages expected', 'pages delivered', 'result']
  const body = rows.map((r) => [r.drill, String(r.eventsIn), String(r.eventsStored), String(r.duplicates), String(r.lost), String(r.pagesExpected), String(r.pagesDelivered), r.result])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const line = (cells: string[]) => `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`
  return [line(head), `|${widths.map((w, i) => (i === 0 ? '-'.repeat(w + 2) : '-'.repeat(w + 1) + ':')).join('|')}|`, ...body.map(line)].join('\n')
}

async function main(): Promise<number> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'))
  for (const w of wanted) if (!drills[w]) throw new Error(`unknown drill ${w}; drills: ${Object.keys(drills).join(', ')}`)
  const started = Date.now()
  let broker: LocalKafka | null = null
  let brokers: string[]
  const external = process.env.KAFKA_BROKERS?.trim()
  if (external) {
    brokers = external.split(',').map((b) => b.trim()).filter(Boolean)
    log(`using the broker at ${brokers.join(',')} (KAFKA_BROKERS); the broker drill is skipped`)
  } else {
    log('starting a local Kafka broker (official jars, KRaft)')
    broker = await startLocalKafka()
    brokers = broker.brokers
    log(`Kafka ${broker.version} at ${brokers.join(',')}`)
  }
  const rows: DrillResult[] = []
  try {
    for (const [name, drill] of Object.entries(drills)) {
      if (wanted.length && !wanted.includes(name)) continue
      const t0 = Date.now()
      log(`--- ${name}`)
      try {
        const r = await drill({ brokers, broker })
        for (const row of Array.isArray(r) ? r : [r]) {
          rows.push(row)
          log(`${row.drill}: ${row.result} ${row.notes.join('; ')}`)
        }
      } catch (err) {
        const row = result(name, {}, [`drill crashed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`.slice(0, 4000)], false)
        row.result = 'FAIL'
        rows.push(row)
        log(`${name}: FAIL ${row.notes[0]}`)
      }
      log(`${name} took ${((Date.now() - t0) / 1000).toFixed(0)} s`)
    }
  } finally {
    await broker?.stop().catch(() => {})
    await stopTopologyDrills()
  }
  const seconds = Math.round((Date.now() - started) / 1000)
  process.stdout.write(`\nBurnwatch fault drills (${seconds} s, Kafka ${broker ? 'local broker' : 'external'}, chDB)\n\n${table(rows)}\n\n`)
  for (const r of rows) if (r.notes.length) process.stdout.write(`- ${r.drill}: ${r.notes.join('; ')}\n`)
  const failed = rows.filter((r) => r.result === 'FAIL').length
  process.stdout.write(
    JSON.stringify({
      drills: rows.map((r) => ({ drill: r.drill, events_in: r.eventsIn, events_stored: r.eventsStored, duplicates: r.duplicates, lost: r.lost, pages_expected: r.pagesExpected, pages_delivered: r.pagesDelivered, result: r.result })),
      failed,
      seconds,
    }) + '\n',
  )
  return failed ? 1 : 0
}

process.exitCode = await main()
// stray kafkajs timers must not keep the process alive
setTimeout(() => process.exit(process.exitCode ?? 0), 2000).unref()
