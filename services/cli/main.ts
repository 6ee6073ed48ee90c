/**
 * The `burnwatch` command line. Each command parses its flags with node:util parseArgs, loads
 * the config once, and hands over to a service factory.
 */
import { parseArgs } from 'node:util'
import { loadConfig, type AppConfig } from '../../shared/config.ts'
import { ConfigError, BurnwatchError } from '../../shared/errors.ts'
import { createLogger, scrub } from '../../shared/logger.ts'
import { openClickHouse } from '../../shared/clickhouse/client.ts'
import { applySchema } from '../../shared/clickhouse/sharded.ts'
import { ensureAnalystRole } from '../../shared/clickhouse/roles.ts'
import { doctor } from './doctor.ts'
import { commands } from './commands.ts'

export const USAGE = `burnwatch — catches AI spend regressions minutes after they start

Usage: burnwatch <command> [options]

Commands:
  start                      all stages in one process (embedded unless KAFKA_BROKERS / CLICKHOUSE_URL are set)
  ingest | aggregate | detect | notify
                             one stage each, for the distributed mode
  ui                         the dashboard alone (UI_PORT, default 8788), reading ClickHouse; a read-only login is enough
  migrate                    apply the ClickHouse migrations
  backtest --events FILE.ndjson --alerts-out FILE.ndjson [--config FILE]
                             aggregator and detector over recorded events, in event time
  replay --events FILE [--rate N] [--url URL]
                             send recorded events to the ingest API (N events/s; 0 = as fast as possible)
  silence --team T [--endpoint E] [--model M] --until TIME --reason R
  silences                   list active silences
  report --month YYYY-MM [--team T] [--format table|csv|focus]
                             showback per team, environment, endpoint and model; focus = FOCUS 1.2 CSV
  digest --team T [--week YYYY-Www] [--send]
                             the weekly digest of a team: printed, or sent to its channel once per week
  doctor                     check the connections to Kafka, ClickHouse and Slack
  demo [--serve]             the whole product on a day of real traffic, compressed (--serve: keep the dashboard up)

Environment: KAFKA_BROKERS, CLICKHOUSE_URL, CLICKHOUSE_USER, CLICKHOUSE_PASSWORD, CLICKHOUSE_DATABASE,
SLACK_BOT_TOKEN, SLACK_API_URL, BURNWATCH_CONFIG, BURNWATCH_DATA_DIR, PORT, UI_PORT, LOG_FORMAT (see README.md).
`

export type Command = (args: string[], ctx: { config: () => AppConfig; out: NodeJS.WritableStream; err: NodeJS.WritableStream }) => Promise<number>

const builtins: Record<string, Command> = {
  async migrate(_args, ctx) {
    const config = ctx.config()
    const h = await openClickHouse(config.clickhouse)
    try {
      const r = await applySchema(h, config.clickhouse)
      if (r.shards !== null) ctx.out.write(`applied the sharded layout (${r.statements} statements) on ${r.shards} shards of cluster ${config.clickhouse.sharded!.cluster}: per-shard tables in ${h.database}_shard, Distributed tables in ${h.database}\n`)
      else ctx.out.write(`applied ${r.applied.length} migration files (${r.statements} statements) to ${h.kind === 'chdb' ? `chDB in ${config.clickhouse.dataDir}` : 'the ClickHouse server'}, database ${h.database}\n`)
      const role = await ensureAnalystRole(h)
      if (role.status === 'applied') ctx.out.write(`read-only role ${role.role} has SELECT on ${role.database}.*\n`)
      else if (role.status === 'unsupported') ctx.out.write(`analyst role: ${role.reason}\n`)
      else ctx.out.write(`analyst role not created: ${role.reason}\n  fix: ${role.fix}\n`)
      return 0
    } finally {
      await h.close()
    }
  },
  async doctor(_args, ctx) {
    const checks = await doctor(ctx.config())
    for (const c of checks) {
      ctx.out.write(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}\n`)
      if (!c.ok && c.fix) ctx.out.write(`     fix: ${c.fix}\n`)
    }
    return checks.every((c) => c.ok) ? 0 : 1
  },
}

export async function main(argv: string[], io: { out?: NodeJS.WritableStream; err?: NodeJS.WritableStream; env?: NodeJS.ProcessEnv } = {}): Promise<number> {
  const out = io.out ?? process.stdout
  const err = io.err ?? process.stderr
  const env = io.env ?? process.env
  const [name, ...rest] = argv
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    out.write(USAGE)
    return name ? 0 : 1
  }
  const cmd = builtins[name] ?? commands[name]
  if (!cmd) {
    err.write(`burnwatch: unknown command '${name}'. Run \`burnwatch help\` for the list.\n`)
    return 2
  }
  // --config FILE is accepted by every command and wins over BURNWATCH_CONFIG
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string' } }, strict: false })
  let cached: AppConfig | null = null
  const config = () => (cached ??= loadConfig(env, typeof values.config === 'string' ? { configPath: values.config } : {}))
  try {
    return await cmd(rest, { config, out, err })
  } catch (e) {
    const secrets = (cached as AppConfig | null)?.secrets ?? []
    if (e instanceof ConfigError || (e instanceof BurnwatchError && !e.retriable)) {
      err.write(`burnwatch ${name}: ${scrub(e.message, secrets)}\n`)
      return 1
    }
    if (e instanceof Error && 'code' in e && (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      err.write(`burnwatch ${name}: ${e.message}. Run \`burnwatch help\`.\n`)
      return 2
    }
    const logger = createLogger({ secrets })
    logger.error({ err: e }, `burnwatch ${name} failed`)
    return 1
  }
}
