/**
 * Configuration, parsed once at the edge: the environment (DESIGN.md "Environment") and the
 * YAML file named by BURNWATCH_CONFIG (DESIGN.md "Config file"). Every problem is listed at
 * once in one ConfigError. Nothing else in the code reads process.env.
 */
import { readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { z } from 'zod'
import { ConfigError } from './errors.ts'

/** `30s`, `1m`, `2h`, `1d` or a number of milliseconds. */
export function parseDuration(value: string | number): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value > 0 ? value : null
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim())
  if (!m) return null
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd']
  return Number(m[1]) * unit
}

const duration = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = parseDuration(v)
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `${what} must be a duration like 30s, 1m, 1h (got ${JSON.stringify(v)})` })
      return z.NEVER
    }
    return ms
  })

const pct = z.number({ error: 'must be a percentage number, e.g. 20' }).positive().max(1000)

export const WEEKDAYS = ['monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday'] as const

const TeamFile = z.strictObject({
  name: z.string().min(1),
  slack_channel: z.string().min(1).optional(),
  mention: z.string().min(1).optional(),
  threshold_pct: pct.optional(),
  signals: z
    .strictObject({
      cost_per_request: z.strictObject({ threshold_pct: pct.optional() }).optional(),
      burn_rate: z.strictObject({ threshold_pct: pct.optional() }).optional(),
    })
    .optional(),
  monthly_budget_usd: z.number().positive().optional(),
  /** monthly budgets of the team's other environments; monthly_budget_usd is production's */
  environment_budgets_usd: z.record(z.string().min(1), z.number().positive()).optional(),
  /** IANA time zone of the team (weekly digest schedule and weeks), e.g. Europe/Berlin; default UTC */
  timezone: z.string().min(1).optional(),
  digest: z.strictObject({ enabled: z.boolean().optional(), day: z.enum(WEEKDAYS).optional(), time: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'digest.time must be HH:MM, e.g. 09:00').optional() }).optional(),
})

/** OTLP spans: service.name → team (so spans without a team attribute are not refused), deployment.environment.name → environment. */
const OtlpFile = z.strictObject({
  services: z.array(z.strictObject({ service_name: z.string().min(1), team: z.string().min(1), environment: z.string().min(1).max(64).optional(), endpoint: z.string().min(1).optional() })).default([]),
  environments: z.record(z.string().min(1), z.string().min(1).max(64)).default({}),
  default_team: z.string().min(1).optional(),
})

/** Per environment: `page: false` posts alerts of that environment to the team's channel without its on-call mention. */
const EnvironmentFile = z.strictObject({ name: z.string().min(1).max(64), page: z.boolean().default(true) })

const PriceFile = z.strictObject({
  model: z.string().min(1),
  provider: z.string().min(1).optional(),
  input: z.number().min(0, 'input price (USD per 1M tokens) must be ≥ 0'),
  output: z.number().min(0, 'output price (USD per 1M tokens) must be ≥ 0'),
  cache_read: z.number().min(0).optional(),
  cache_write: z.number().min(0).optional(),
})

export const ConfigFileSchema = z.strictObject({
  defaults: z
    .strictObject({
      slack_channel: z.string().min(1).default('#ai-spend'),
      threshold_pct: pct.default(20),
      // one window length for the windower, the ClickHouse views (toStartOfMinute) and the rebuild
      window: duration('defaults.window')
        .refine((ms) => ms === 60_000, { message: 'defaults.window must be 1m: windows are one minute in the aggregator, the ClickHouse views (cost_windows, rollups) and the detector rebuild' })
        .default(60_000),
      allowed_lateness: duration('defaults.allowed_lateness').default(30_000),
      min_requests_per_window: z.number().int().min(0).default(0),
      resolve_windows: z.number().int().min(1).default(10),
      dedup_horizon: duration('defaults.dedup_horizon').default(3_600_000),
      strict_events: z.boolean().default(true),
      // bounded memory: series with their own live windows, per team and in all; the rest is counted in an overflow series
      max_series_per_team: z.number().int().min(1).default(2_000),
      max_series: z.number().int().min(1).default(20_000),
      series_idle: duration('defaults.series_idle').default(3_600_000),
      // the detector keeps this many endpoints' state (rollup and series) as objects; the others as bytes in a scratch file under BURNWATCH_DATA_DIR/detector
      hot_endpoints: z.number().int().min(1).default(64),
    })
    .prefault({}),
  teams: z.array(TeamFile).default([]),
  deployment_url_template: z.string().optional(),
  clickhouse_console_url: z.string().optional(),
  public_url: z.url({ protocol: /^https?$/, error: 'public_url must be an http(s) URL such as https://burnwatch.example.com' }).optional(),
  ingest_keys: z.array(z.strictObject({ key_env: z.string().min(1), teams: z.array(z.string().min(1)).min(1) })).default([]),
  prices: z.array(PriceFile).default([]),
  gpu_hour_usd: z.number().min(0).default(0),
  silences_file: z.string().optional(),
  otlp: OtlpFile.prefault({}),
  environments: z.array(EnvironmentFile).default([]),
  /** the weekly digest: day and local time (team time zone) it is sent; teams may override */
  digest: z.strictObject({ enabled: z.boolean().default(true), day: z.enum(WEEKDAYS).default('monday'), time: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'digest.time must be HH:MM, e.g. 09:00').default('09:00') }).prefault({}),
})
export type ConfigFile = z.infer<typeof ConfigFileSchema>

const EnvSchema = z.object({
  KAFKA_BROKERS: z.string().optional(),
  KAFKA_CLIENT_ID: z.string().default('burnwatch'),
  KAFKA_TOPIC_PREFIX: z.string().default(''),
  CLICKHOUSE_URL: z.url({ error: 'CLICKHOUSE_URL must be a URL such as http://localhost:8123' }).optional(),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  // the sharded layout (shared/clickhouse/sharded.ts): a cluster of the servers' remote_servers, and each shard's HTTP URL
  CLICKHOUSE_CLUSTER: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'CLICKHOUSE_CLUSTER must be a cluster name from remote_servers (letters, digits, _)').optional(),
  CLICKHOUSE_SHARD_URLS: z.string().optional(),
  CLICKHOUSE_DATABASE: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'CLICKHOUSE_DATABASE must be an identifier (letters, digits, _)').default('burnwatch'),
  SLACK_BOT_TOKEN: z.string().optional(),
  SLACK_API_URL: z.url({ error: 'SLACK_API_URL must be a URL such as https://slack.com/api/' }).optional(),
  BURNWATCH_CONFIG: z.string().optional(),
  BURNWATCH_DATA_DIR: z.string().default('./data'),
  // embedded mode: serve the chDB data as a ClickHouse server on loopback (shared/clickhouse/embedded-server.ts)
  BURNWATCH_EMBEDDED_SERVER: z.enum(['0', '1'], { error: 'BURNWATCH_EMBEDDED_SERVER must be 1 (serve the embedded store on loopback) or 0 (chDB in-process only)' }).default('1'),
  CLICKHOUSE_HTTP_PORT: z.coerce.number({ error: 'CLICKHOUSE_HTTP_PORT must be a port number' }).int().min(1).max(65535).default(8123),
  CLICKHOUSE_TCP_PORT: z.coerce.number({ error: 'CLICKHOUSE_TCP_PORT must be a port number' }).int().min(1).max(65535).default(9000),
  BURNWATCH_ANALYST_PASSWORD: z.string().min(8, 'BURNWATCH_ANALYST_PASSWORD must have at least 8 characters').optional(),
  PORT: z.coerce.number({ error: 'PORT must be a port number' }).int().min(0).max(65535).default(8787),
  UI_PORT: z.coerce.number({ error: 'UI_PORT must be a port number' }).int().min(0).max(65535).default(8788),
  HOST: z.string().default('127.0.0.1'),
  METRICS_PORT: z.coerce.number({ error: 'METRICS_PORT must be a port number' }).int().min(0).max(65535).optional(),
  BURNWATCH_BODY_LIMIT: z.coerce.number().int().positive().default(5 * 1024 * 1024),
  // a process running the detector asks V8 (and glibc, bin/burnwatch.js) to favor memory over throughput (shared/v8-memory.ts); 0 keeps the defaults
  BURNWATCH_V8_FAVOR_MEMORY: z.enum(['0', '1'], { error: 'BURNWATCH_V8_FAVOR_MEMORY must be 1 (V8 sizes the heap for memory: RSS follows live state) or 0 (V8 defaults: more RSS, less CPU)' }).default('1'),
  LOG_LEVEL: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  LOG_FORMAT: z.enum(['auto', 'json', 'pretty'], { error: 'LOG_FORMAT must be auto (readable on a terminal, JSON otherwise), json or pretty' }).default('auto'),
})

export interface IngestKey {
  /** the secret itself, read from the environment variable named in the config */
  key: string
  keyEnv: string
  teams: string[]
}

/** embedded mode's loopback ClickHouse server (when url is null) */
export interface EmbeddedServerConfig {
  enabled: boolean
  httpPort: number
  tcpPort: number
  /** null: generated once and kept in <data dir>/clickhouse-server/analyst-password */
  analystPassword: string | null
}

export interface AppConfig {
  kafka: { brokers: string[] | null; clientId: string; topics: Topics }
  clickhouse: { url: string | null; user: string; password: string; database: string; dataDir: string; embeddedServer?: EmbeddedServerConfig; sharded?: { cluster: string; shardUrls: string[] } | null }
  slack: { botToken: string | null; apiUrl: string | null }
  http: { port: number; host: string; bodyLimitBytes: number; metricsPort: number | null }
  /** the dashboard: its port (UI_PORT, on HOST) */
  ui: { port: number }
  /** where people reach the dashboard (config `public_url`, else the local UI address); null when unknown (UI_PORT=0) */
  publicUrl: string | null
  dataDir: string
  /** a process running the detector sets V8's --optimize-for-size (shared/v8-memory.ts) */
  v8FavorMemory: boolean
  logLevel: string
  /** auto: human-readable on a terminal, JSON lines otherwise */
  logFormat: 'auto' | 'json' | 'pretty'
  file: ConfigFile
  ingestKeys: IngestKey[]
  /** values that must never be logged */
  secrets: string[]
}

export interface Topics {
  events: string
  deployments: string
  windows: string
  alerts: string
  deadLetter: string
}

export function topicNames(prefix = ''): Topics {
  return {
    events: `${prefix}usage.events`,
    deployments: `${prefix}deployments`,
    windows: `${prefix}cost.windows`,
    alerts: `${prefix}cost.alerts`,
    deadLetter: `${prefix}usage.events.dlq`,
  }
}

function issuesOf(prefix: string, err: z.ZodError): string[] {
  return err.issues.map((i) => `${prefix}${i.path.length ? i.path.join('.') + ': ' : ''}${i.message}`)
}

/** Parses a config file's text (YAML or JSON). */
export function parseConfigFile(text: string, source = 'config'): ConfigFile {
  let raw: unknown
  try {
    raw = parseYaml(text) ?? {}
  } catch (err) {
    throw new ConfigError([`${source}: not valid YAML: ${(err as Error).message}`])
  }
  const r = ConfigFileSchema.safeParse(raw)
  if (!r.success) throw new ConfigError(issuesOf(`${source}: `, r.error))
  return r.data
}

/** Parses the environment and the config file together; lists every problem at once. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: { configPath?: string } = {}): AppConfig {
  const problems: string[] = []
  // an empty variable means unset (KAFKA_BROKERS= npm start)
  const e = EnvSchema.safeParse(Object.fromEntries(Object.entries(env).filter(([, v]) => v !== '')))
  if (!e.success) problems.push(...issuesOf('environment ', e.error))

  let file: ConfigFile = ConfigFileSchema.parse({})
  const path = overrides.configPath ?? env.BURNWATCH_CONFIG
  if (path) {
    try {
      file = parseConfigFile(readFileSync(resolve(path), 'utf8'), path)
    } catch (err) {
      if (err instanceof ConfigError) problems.push(...err.problems)
      else problems.push(`BURNWATCH_CONFIG=${path}: cannot read the file (${(err as NodeJS.ErrnoException).code ?? String(err)}); set it to an existing YAML file or unset it`)
    }
  }

  const ingestKeys: IngestKey[] = []
  for (const k of file.ingest_keys) {
    const key = env[k.key_env]
    if (!key) problems.push(`ingest_keys: environment variable ${k.key_env} is not set; export it with the key, or remove the entry`)
    else if (key.length < 16) problems.push(`ingest_keys: the key in ${k.key_env} is shorter than 16 characters; use a long random key`)
    else ingestKeys.push({ key, keyEnv: k.key_env, teams: k.teams })
  }
  const teamNames = new Set<string>()
  for (const t of file.teams) {
    if (teamNames.has(t.name)) problems.push(`teams: team '${t.name}' is listed twice`)
    teamNames.add(t.name)
    if (t.timezone !== undefined && !validTimeZone(t.timezone)) problems.push(`teams: team '${t.name}': timezone '${t.timezone}' is not an IANA time zone; use a name such as Europe/Berlin or UTC`)
  }

  if (problems.length || !e.success) throw new ConfigError(problems)
  const v = e.data
  const brokers = v.KAFKA_BROKERS?.split(',').map((b) => b.trim()).filter(Boolean) ?? []
  const secrets = [v.SLACK_BOT_TOKEN, v.CLICKHOUSE_PASSWORD, v.BURNWATCH_ANALYST_PASSWORD, ...ingestKeys.map((k) => k.key)].filter((s): s is string => !!s && s.length >= 4)
  return {
    kafka: { brokers: brokers.length ? brokers : null, clientId: v.KAFKA_CLIENT_ID, topics: topicNames(v.KAFKA_TOPIC_PREFIX) },
    clickhouse: {
      url: v.CLICKHOUSE_URL ?? null,
      user: v.CLICKHOUSE_USER,
      password: v.CLICKHOUSE_PASSWORD,
      database: v.CLICKHOUSE_DATABASE,
      dataDir: v.BURNWATCH_DATA_DIR,
      sharded: v.CLICKHOUSE_CLUSTER ? { cluster: v.CLICKHOUSE_CLUSTER, shardUrls: (v.CLICKHOUSE_SHARD_URLS ?? v.CLICKHOUSE_URL ?? '').split(',').map((u) => u.trim()).filter(Boolean) } : null,
      embeddedServer: { enabled: v.BURNWATCH_EMBEDDED_SERVER === '1', httpPort: v.CLICKHOUSE_HTTP_PORT, tcpPort: v.CLICKHOUSE_TCP_PORT, analystPassword: v.BURNWATCH_ANALYST_PASSWORD ?? null },
    },
    slack: { botToken: v.SLACK_BOT_TOKEN || null, apiUrl: v.SLACK_API_URL ?? null },
    http: { port: v.PORT, host: v.HOST, bodyLimitBytes: v.BURNWATCH_BODY_LIMIT, metricsPort: v.METRICS_PORT ?? null },
    ui: { port: v.UI_PORT },
    publicUrl: publicUrlOf(file.public_url, v.HOST, v.UI_PORT),
    dataDir: v.BURNWATCH_DATA_DIR,
    v8FavorMemory: v.BURNWATCH_V8_FAVOR_MEMORY === '1',
    logLevel: v.LOG_LEVEL,
    logFormat: v.LOG_FORMAT,
    file,
    ingestKeys,
    secrets,
  }
}

export function validTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: tz })
    return true
  } catch {
    return false
  }
}

/** The dashboard's base URL without a trailing slash: `public_url`, else the address it listens on. */
export function publicUrlOf(configured: string | undefined, host: string, uiPort: number): string | null {
  if (configured) return configured.replace(/\/+$/, '')
  if (uiPort === 0) return null
  const h = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  return `http://${h}:${uiPort}`
}

/** Team settings with the defaults applied. */
export function teamSettings(file: ConfigFile, team: string) {
  const t = file.teams.find((x) => x.name === team)
  return {
    slackChannel: t?.slack_channel ?? file.defaults.slack_channel,
    mention: t?.mention ?? null,
    thresholdPct: t?.threshold_pct ?? file.defaults.threshold_pct,
    monthlyBudgetUsd: t?.monthly_budget_usd ?? null,
    timezone: t?.timezone ?? 'UTC',
    digest: { enabled: t?.digest?.enabled ?? file.digest.enabled, day: t?.digest?.day ?? file.digest.day, time: t?.digest?.time ?? file.digest.time },
  }
}

/** The monthly budget of a team in one environment (production: monthly_budget_usd); null when none is set. */
export function environmentBudget(file: Pick<ConfigFile, 'teams'>, team: string, environment: string): number | null {
  const t = file.teams.find((x) => x.name === team)
  if (!t) return null
  if (environment === 'production') return t.monthly_budget_usd ?? null
  return t.environment_budgets_usd?.[environment] ?? null
}

/** Whether alerts of an environment page (mention the on-call) or only notify; production always pages. */
export function environmentPages(file: Pick<ConfigFile, 'environments'>, environment: string): boolean {
  if (environment === 'production') return true
  return file.environments.find((e) => e.name === environment)?.page ?? true
}
