/** Commands that run the pipeline's stages and the operator tools. */
import { parseArgs } from 'node:util'
import { existsSync } from 'node:fs'
import { SingleBar, Presets } from 'cli-progress'
import type { Command } from './main.ts'
import { runStages, type StageName } from './stages.ts'
import { runBacktest } from '../backtest/run.ts'
import { replay } from './replay.ts'
import { ValidationError } from '../../shared/errors.ts'
import { printable } from '../../shared/text.ts'
import { openClickHouse } from '../../shared/clickhouse/client.ts'
import { migrate } from '../../shared/clickhouse/migrate.ts'
import { addSilence, formatSilences, listSilences } from '../notifier/index.ts'
import { runDemo } from '../demo/run.ts'
import { buildReport } from '../report/run.ts'
import { buildDigest } from '../digest/build.ts'
import { renderDigest } from '../digest/render.ts'
import { createSlackDigestPoster, sendDigest } from '../digest/send.ts'
import { parseWeek, previousWeek, weekAt } from '../digest/week.ts'
import { teamSettings } from '../../shared/config.ts'
import { createLogger } from '../../shared/logger.ts'

const stage =
  (...names: StageName[]): Command =>
  async (_args, ctx) =>
    runStages(names, ctx.config(), ctx.out)

/** Progress bar on stderr when it is a terminal, a line every few seconds otherwise. */
export function progress(label: string, err: NodeJS.WritableStream, unit = 'MB') {
  const tty = (err as NodeJS.WriteStream).isTTY === true
  const bar = tty ? new SingleBar({ format: `${label} [{bar}] {percentage}% | {value}/{total} ${unit} | {events} events | ETA {eta}s`, stream: err as NodeJS.WriteStream }, Presets.shades_classic) : null
  let started = false
  let last = 0
  return {
    update(done: number, total: number, events: number) {
      if (bar) {
        if (!started) bar.start(total, 0, { events })
        started = true
        bar.update(done, { events })
      } else if (Date.now() - last > 2000 || done >= total) {
        last = Date.now()
        err.write(`${label}: ${Math.round((100 * done) / Math.max(total, 1))}% (${events} events)\n`)
      }
    },
    stop() {
      if (started) bar?.stop()
    },
  }
}

function need(value: string | boolean | undefined, flag: string, example: string): string {
  if (typeof value !== 'string' || !value) throw new ValidationError(`${flag} is required, e.g. ${example}`)
  return value
}

export const commands: Record<string, Command> = {
  start: stage('ingest', 'aggregate', 'detect', 'notify', 'ui'),
  ui: stage('ui'),
  ingest: stage('ingest'),
  aggregate: stage('aggregate'),
  detect: stage('detect'),
  notify: stage('notify'),

  async backtest(args, ctx) {
    const { values } = parseArgs({ args, options: { events: { type: 'string' }, 'alerts-out': { type: 'string' }, config: { type: 'string' }, partitions: { type: 'string' } } })
    const events = need(values.events, '--events FILE.ndjson', 'burnwatch backtest --events usage.ndjson --alerts-out alerts.ndjson')
    const alertsOut = need(values['alerts-out'], '--alerts-out FILE.ndjson', 'burnwatch backtest --events usage.ndjson --alerts-out alerts.ndjson')
    if (!existsSync(events)) throw new ValidationError(`--events ${events}: no such file`)
    const config = ctx.config()
    const bar = progress('backtest', ctx.err)
    const s = await runBacktest({
      eventsPath: events,
      alertsOut,
      file: config.file,
      ...(values.partitions ? { partitions: Number(values.partitions) } : {}),
      onProgress: (done, total, n) => bar.update(Math.round(done / 1e5) / 10, Math.round(total / 1e5) / 10, n),
    })
    bar.stop()
    ctx.out.write(
      `backtest: ${s.events} events (${s.invalid} invalid, ${s.duplicates} duplicates, ${s.late} late) → ${s.windows} windows → ${s.alerts} alert state changes ${JSON.stringify(s.byStatus)} in ${s.seconds.toFixed(2)} s (${Math.round(s.eventsPerSecond)} events/s); written to ${alertsOut}\n`,
    )
    if (s.firstError) ctx.out.write(`first invalid line: ${printable(s.firstError)}\n`)
    return 0
  },

  async replay(args, ctx) {
    const { values } = parseArgs({ args, options: { events: { type: 'string' }, rate: { type: 'string' }, url: { type: 'string' }, config: { type: 'string' }, 'batch-size': { type: 'string' } } })
    const events = need(values.events, '--events FILE', 'burnwatch replay --events usage.ndjson --rate 1000')
    if (!existsSync(events)) throw new ValidationError(`--events ${events}: no such file`)
    const rate = values.rate === undefined ? 0 : Number(values.rate)
    if (!Number.isFinite(rate) || rate < 0) throw new ValidationError(`--rate must be a number of events per second ≥ 0 (0 = as fast as possible), got ${values.rate}`)
    const config = ctx.config()
    const url = values.url ?? `http://127.0.0.1:${config.http.port}`
    const key = config.ingestKeys[0]?.key
    const bar = progress('replay', ctx.err, 'events')
    const r = await replay({ eventsPath: events, url, rate, ...(key ? { key } : {}), ...(values['batch-size'] ? { batchSize: Number(values['batch-size']) } : {}), onProgress: (done, total) => bar.update(done, total, done) })
    bar.stop()
    ctx.out.write(`replay: ${r.sent} events accepted by ${url} in ${r.seconds.toFixed(1)} s (${Math.round(r.sent / Math.max(r.seconds, 1e-9))} events/s); ${r.rejected} rejected${r.firstError ? ` (first: ${printable(r.firstError)})` : ''}\n`)
    return r.rejected ? 1 : 0
  },

  async silence(args, ctx) {
    const { values } = parseArgs({ args, options: { team: { type: 'string' }, endpoint: { type: 'string' }, model: { type: 'string' }, until: { type: 'string' }, reason: { type: 'string' }, config: { type: 'string' } } })
    const team = need(values.team, '--team', "--team search --until 2h --reason 'planned load test'")
    const until = need(values.until, '--until', '--until 2026-11-23T08:00:00Z or --until 2h')
    const reason = need(values.reason, '--reason', "--reason 'planned load test'")
    const config = ctx.config()
    const h = await openClickHouse(config.clickhouse)
    try {
      await migrate(h.client)
      const s = await addSilence(h.client, { team, endpoint: values.endpoint ?? null, model: values.model ?? null, until, reason, createdBy: process.env.USER ?? 'cli' })
      ctx.out.write(`silenced ${formatSilences([s])}`)
      return 0
    } finally {
      await h.close()
    }
  },

  async silences(_args, ctx) {
    const config = ctx.config()
    const h = await openClickHouse(config.clickhouse)
    try {
      await migrate(h.client)
      ctx.out.write(formatSilences(await listSilences(h.client)))
      return 0
    } finally {
      await h.close()
    }
  },

  async report(args, ctx) {
    const { values } = parseArgs({ args, options: { month: { type: 'string' }, team: { type: 'string' }, format: { type: 'string' }, config: { type: 'string' } } })
    const month = need(values.month, '--month YYYY-MM', 'burnwatch report --month 2026-11 --team search --format focus')
    const config = ctx.config()
    const h = await openClickHouse(config.clickhouse)
    try {
      await migrate(h.client)
      const r = await buildReport(h.client, config.file, { month, team: values.team ?? null, ...(values.format !== undefined ? { format: values.format } : {}) })
      ctx.out.write(r.text)
      return 0
    } finally {
      await h.close()
    }
  },

  async digest(args, ctx) {
    const { values } = parseArgs({ args, options: { team: { type: 'string' }, week: { type: 'string' }, send: { type: 'boolean' }, force: { type: 'boolean' }, config: { type: 'string' } } })
    const team = need(values.team, '--team', 'burnwatch digest --team search --week 2026-W48')
    const config = ctx.config()
    if (!config.file.teams.some((t) => t.name === team)) {
      const known = config.file.teams.map((t) => t.name)
      throw new ValidationError(`--team ${team}: no such team in the config${known.length ? ` (teams: ${known.join(', ')})` : ' (it lists no teams; add one under teams: in BURNWATCH_CONFIG)'}`)
    }
    const tz = teamSettings(config.file, team).timezone
    // default: the last complete week in the team's time zone
    const week = values.week ? parseWeek(values.week, tz) : previousWeek(weekAt(Date.now(), tz))
    const poster = values.send ? createSlackDigestPoster(config.slack) : null
    const h = await openClickHouse(config.clickhouse)
    try {
      await migrate(h.client)
      if (!poster) {
        ctx.out.write(renderDigest(await buildDigest(h.client, config.file, team, week)))
        return 0
      }
      const logger = createLogger({ level: config.logLevel, secrets: config.secrets })
      const r = await sendDigest({ client: h.client, config, poster, team, week, logger, force: values.force === true })
      ctx.out.write(r.status === 'sent' ? `digest ${week.id} of ${team} sent to ${r.channel} (total $${Number(r.total).toFixed(2)})\n` : `digest ${week.id} of ${team} was already sent (${r.recorded}); nothing sent. --force sends it again.\n`)
      return 0
    } finally {
      await h.close()
    }
  },

  async demo(args, ctx) {
    return runDemo(args, ctx)
  },
}
