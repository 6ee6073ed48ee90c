/**
 * Fixture for the analyst queries of docs/clickhouse.md: three teams over three weeks with
 * answers known from the definition below (costs are whole micro-dollars, so expected sums are
 * exact integers until the final division).
 *
 *   anchor T = the most recent 15th of a month at 12:00 UTC that has passed (so every row is
 *   within the 90-day TTL of usage_events, and T-14d..T lies in one calendar month)
 *
 *   search  POST /v1/answer        gpt-4o                  (Kafka partition 0)
 *     T-20d..T-19d   10 req × $0.001  search-d1   (previous month, for showback)
 *     T-14d..T-7d   100 req × $0.001  search-d1   (last week)
 *     T-6d..T-3d    100 req × $0.001  search-d1   (this week, before the deploy)
 *     T-3d..T       100 req × $0.002  search-d2   (after the deploy at D = T-3d; 250 cache-read tokens of 1000)
 *   support support-bot            claude-sonnet-4         (partition 1)
 *     T-14d..T-7d    50 req × $0.005  support-s1  (1500 cache-read tokens of 2000)
 *     T-7d..T        50 req × $0.005  support-s1  (10 errors, 5 late)
 *   labs    POST /v1/embed         text-embedding-3-small  (partition 2, no deployment_id)
 *     T-14d..T-7d   100 req × $0.00002
 *     T-7d..T       250 req × $0.00002
 *   labs    POST /v1/experiment    my-finetune-7b          (partition 2, unpriced: cost 0)
 *     T-2d..T        40 req × $0      labs-x1     (4 errors)
 *
 * Deployment markers: search-d1 (T-30d), search-d2 (T-3d, sent twice), support-s1 (T-25d),
 * labs-x1 (T-2d). Alerts: al-search-cpr firing T-3d+20m (sent twice) then updated T-2d;
 * al-labs-budget firing T-1d, resolved T-12h; al-support-burn firing T-10d, resolved T-9d.
 */
import type { UsageRow as StoredRow } from '../../services/aggregator/clickhouse-store.ts'
import type { DeploymentTableRow } from '../../schemas/deployment.ts'

export const MINUTE = 60_000
export const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR
export const TOPIC = 'usage.events'

export interface Batch {
  name: string
  team: string
  endpoint: string
  model: string
  provider: string
  service: string
  deployment_id: string
  count: number
  /** cost of one request in micro-dollars */
  costMicros: number
  from: number
  to: number
  input_tokens: number
  output_tokens: number
  cache_read_tokens: number
  /** the first `errors` requests of the batch failed (and still cost money) */
  errors: number
  /** the last `late` requests arrived after their window had closed */
  late: number
  unpriced: boolean
  partition: number
}

/** a usage_events row as the aggregator writes it, with the arrival time set explicitly */
export type UsageRow = Omit<StoredRow, 'timestamp'> & { timestamp: string; ingested_at: string }

/** One fixture event with its numbers (ms timestamps, integer micro-dollars) for expectations. */
export interface FixtureEvent {
  batch: Batch
  ts: number
  costMicros: number
  error: boolean
  late: boolean
  row: UsageRow
}

export interface DeploymentRow extends DeploymentTableRow {
  received_at: string
}

export interface AlertRow {
  alert_id: string
  status: 'firing' | 'updated' | 'resolved'
  team: string
  endpoint: string | null
  model: string | null
  signal: string
  direction: string
  baseline: number
  current: number
  change_pct: number
  started_at: string
  detected_at: string
  deployment_ids: string[]
  drivers: string
  severity: string
  monthly_impact_usd: number
  recorded_at: string
}

export interface AnalystFixture {
  T: number
  D: number
  batches: Batch[]
  events: FixtureEvent[]
  /** deployment marker inserts, in order (search-d2 twice: a re-sent marker) */
  deployments: DeploymentRow[][]
  /** alert inserts, in order (the firing row of al-search-cpr twice: a redelivery) */
  alerts: AlertRow[][]
}

/** `YYYY-MM-DD hh:mm:ss` in UTC: the text form of a `{name:DateTime('UTC')}` parameter. */
export const chDateTime = (ms: number): string => new Date(ms).toISOString().slice(0, 19).replace('T', ' ')
/** `YYYY-MM-DD hh:mm:ss.sss` in UTC: how ClickHouse prints DateTime64(3, 'UTC'). */
export const chDateTime64 = (ms: number): string => new Date(ms).toISOString().slice(0, 23).replace('T', ' ')
export const chDate = (ms: number): string => new Date(ms).toISOString().slice(0, 10)

export const monthStart = (ms: number): number => {
  const d = new Date(ms)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
}
export const addMonths = (ms: number, n: number): number => {
  const d = new Date(ms)
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1)
}

/** The most recent 15th of a month, 12:00 UTC, not after `now`. */
export function anchorBefore(now: number): number {
  const d = new Date(now)
  const thisMonth = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 15, 12)
  return thisMonth <= now ? thisMonth : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() - 1, 15, 12)
}

export function buildAnalystFixture(now = Date.now()): AnalystFixture {
  const T = anchorBefore(now)
  const D = T - 3 * DAY
  const search = { team: 'search', endpoint: 'POST /v1/answer', model: 'gpt-4o', provider: 'openai', service: 'search-api', input_tokens: 1000, output_tokens: 100, cache_read_tokens: 0, errors: 0, late: 0, unpriced: false, partition: 0 }
  const support = { team: 'support', endpoint: 'support-bot', model: 'claude-sonnet-4', provider: 'anthropic', service: 'support-svc', deployment_id: 'support-s1', costMicros: 5000, input_tokens: 2000, output_tokens: 300, cache_read_tokens: 1500, errors: 0, late: 0, unpriced: false, partition: 1 }
  const embed = { team: 'labs', endpoint: 'POST /v1/embed', model: 'text-embedding-3-small', provider: 'openai', service: 'labs-api', deployment_id: '', costMicros: 20, input_tokens: 500, output_tokens: 0, cache_read_tokens: 0, errors: 0, late: 0, unpriced: false, partition: 2 }
  const batches: Batch[] = [
    { ...search, name: 'search-prev-month', deployment_id: 'search-d1', count: 10, costMicros: 1000, from: T - 20 * DAY, to: T - 19 * DAY },
    { ...search, name: 'search-last-week', deployment_id: 'search-d1', count: 100, costMicros: 1000, from: T - 14 * DAY, to: T - 7 * DAY },
    { ...search, name: 'search-before-deploy', deployment_id: 'search-d1', count: 100, costMicros: 1000, from: D - 3 * DAY, to: D },
    { ...search, name: 'search-after-deploy', deployment_id: 'search-d2', count: 100, costMicros: 2000, output_tokens: 200, cache_read_tokens: 250, from: D, to: T },
    { ...support, name: 'support-last-week', count: 50, from: T - 14 * DAY, to: T - 7 * DAY },
    { ...support, name: 'support-this-week', count: 50, errors: 10, late: 5, from: T - 7 * DAY, to: T },
    { ...embed, name: 'embed-last-week', count: 100, from: T - 14 * DAY, to: T - 7 * DAY },
    { ...embed, name: 'embed-this-week', count: 250, from: T - 7 * DAY, to: T },
    { team: 'labs', endpoint: 'POST /v1/experiment', model: 'my-finetune-7b', provider: 'self-hosted', service: 'labs-api', deployment_id: 'labs-x1', costMicros: 0, input_tokens: 800, output_tokens: 200, cache_read_tokens: 0, errors: 4, late: 0, unpriced: true, partition: 2, name: 'experiment-unpriced', count: 40, from: T - 2 * DAY, to: T },
  ]

  const events: FixtureEvent[] = []
  for (const b of batches) {
    for (let i = 0; i < b.count; i++) {
      const ts = b.from + Math.floor((i * (b.to - b.from)) / b.count)
      const error = i < b.errors
      const late = i >= b.count - b.late
      events.push({
        batch: b,
        ts,
        costMicros: b.costMicros,
        error,
        late,
        row: {
          event_id: `${b.name}-${i}`,
          timestamp: chDateTime64(ts),
          team: b.team,
          endpoint: b.endpoint,
          model: b.model,
          provider: b.provider,
          service: b.service,
          deployment_id: b.deployment_id,
          input_tokens: b.input_tokens,
          output_tokens: b.output_tokens,
          cache_read_tokens: b.cache_read_tokens,
          cache_write_tokens: 0,
          reasoning_tokens: 0,
          environment: 'production',
          // the cost by token component (migration 042): 40% input, 60% output
          cost_input_usd: (b.costMicros / 1e6) * 0.4,
          cost_cache_read_usd: 0,
          cost_cache_write_usd: 0,
          cost_output_usd: (b.costMicros / 1e6) * 0.6,
          retry: false,
          batch: false,
          cost_usd: (b.costMicros / 1e6).toFixed(6),
          cost_source: b.unpriced ? 'unpriced' : 'catalog',
          unpriced: b.unpriced,
          gpu_seconds: 0,
          latency_ms: 100 + (i % 50),
          status: error ? 'error' : 'ok',
          attributes: { tier: i % 2 ? 'free' : 'pro' },
          late,
          kafka_topic: TOPIC,
          kafka_partition: b.partition,
          kafka_offset: -1,
          // a late event reached the aggregator 10 minutes after it happened
          ingested_at: chDateTime64(ts + (late ? 10 * MINUTE : 500)),
        },
      })
    }
  }
  // offsets per partition in arrival order: on time events by event time, late ones last
  const partitions = [...new Set(batches.map((b) => b.partition))]
  for (const p of partitions) {
    const inP = events.filter((e) => e.batch.partition === p).sort((a, b) => Number(a.late) - Number(b.late) || a.ts - b.ts)
    inP.forEach((e, offset) => (e.row.kafka_offset = offset))
  }

  const dep = (deployment_id: string, team: string, service: string, ts: number, version: string, endpoint: string | null, receivedDelay: number): DeploymentRow => ({
    deployment_id,
    team,
    service,
    timestamp: chDateTime64(ts),
    endpoint,
    version,
    commit: `c0ffee${version.replace(/\./g, '')}`,
    url: `https://git.example.com/${service}/releases/${version}`,
    received_at: chDateTime64(ts + receivedDelay),
  })
  const d2 = dep('search-d2', 'search', 'search-api', D, '1.5.0', 'POST /v1/answer', 1000)
  const deployments: DeploymentRow[][] = [
    [dep('search-d1', 'search', 'search-api', T - 30 * DAY, '1.4.0', null, 1000), d2, dep('support-s1', 'support', 'support-svc', T - 25 * DAY, '7.0.0', null, 1000), dep('labs-x1', 'labs', 'labs-api', T - 2 * DAY, '0.1.0', 'POST /v1/experiment', 1000)],
    // the same marker sent again (an HTTP retry): ReplacingMergeTree keeps one after merges or with FINAL
    [{ ...d2, received_at: chDateTime64(D + 5000) }],
  ]

  const alert = (a: Omit<AlertRow, 'direction' | 'drivers' | 'recorded_at' | 'severity'> & { severity?: string }): AlertRow => ({
    direction: 'up',
    drivers: '{"output_tokens_per_request":100}',
    severity: 'page',
    ...a,
    recorded_at: a.detected_at,
  })
  const searchFiring = alert({ alert_id: 'al-search-cpr', status: 'firing', team: 'search', endpoint: 'POST /v1/answer', model: 'gpt-4o', signal: 'cost_per_request', baseline: 0.001, current: 0.002, change_pct: 100, started_at: chDateTime64(D), detected_at: chDateTime64(D + 20 * MINUTE), deployment_ids: ['search-d2', 'search-d1'], monthly_impact_usd: 2 })
  const alerts: AlertRow[][] = [
    [
      searchFiring,
      alert({ ...searchFiring, status: 'updated', current: 0.002, detected_at: chDateTime64(T - 2 * DAY) }),
      alert({ alert_id: 'al-labs-budget', status: 'firing', team: 'labs', endpoint: null, model: null, signal: 'budget_burn', baseline: 0.5, current: 1.5, change_pct: 200, started_at: chDateTime64(T - DAY - HOUR), detected_at: chDateTime64(T - DAY), deployment_ids: [], monthly_impact_usd: 30, severity: 'warn' }),
      alert({ alert_id: 'al-labs-budget', status: 'resolved', team: 'labs', endpoint: null, model: null, signal: 'budget_burn', baseline: 0.5, current: 0.5, change_pct: 0, started_at: chDateTime64(T - DAY - HOUR), detected_at: chDateTime64(T - 12 * HOUR), deployment_ids: [], monthly_impact_usd: 0, severity: 'warn' }),
      alert({ alert_id: 'al-support-burn', status: 'firing', team: 'support', endpoint: 'support-bot', model: 'claude-sonnet-4', signal: 'burn_rate', baseline: 0.03, current: 0.05, change_pct: 66.7, started_at: chDateTime64(T - 10 * DAY - HOUR), detected_at: chDateTime64(T - 10 * DAY), deployment_ids: ['support-s1'], monthly_impact_usd: 14 }),
      alert({ alert_id: 'al-support-burn', status: 'resolved', team: 'support', endpoint: 'support-bot', model: 'claude-sonnet-4', signal: 'burn_rate', baseline: 0.03, current: 0.03, change_pct: 0, started_at: chDateTime64(T - 10 * DAY - HOUR), detected_at: chDateTime64(T - 9 * DAY), deployment_ids: ['support-s1'], monthly_impact_usd: 0 }),
    ],
    // the firing row delivered twice (a producer retry)
    [{ ...searchFiring, recorded_at: chDateTime64(D + 21 * MINUTE) }],
  ]

  return { T, D, batches, events, deployments, alerts }
}

/** Totals of the fixture events matching `pred`: the expected answer of an aggregate. */
export interface Totals {
  requests: number
  errors: number
  late: number
  unpriced: number
  costMicros: number
  input: number
  cacheRead: number
}

export function totals(events: FixtureEvent[], pred: (e: FixtureEvent) => boolean = () => true): Totals {
  const t: Totals = { requests: 0, errors: 0, late: 0, unpriced: 0, costMicros: 0, input: 0, cacheRead: 0 }
  for (const e of events) {
    if (!pred(e)) continue
    t.requests++
    t.costMicros += e.costMicros
    if (e.error) t.errors++
    if (e.late) t.late++
    if (e.batch.unpriced) t.unpriced++
    t.input += e.batch.input_tokens
    t.cacheRead += e.batch.cache_read_tokens
  }
  return t
}

/** Totals grouped by a key, keys sorted. */
export function totalsBy(events: FixtureEvent[], key: (e: FixtureEvent) => string, pred: (e: FixtureEvent) => boolean = () => true): Map<string, Totals> {
  const keys = [...new Set(events.filter(pred).map(key))].sort()
  return new Map(keys.map((k) => [k, totals(events, (e) => pred(e) && key(e) === k)]))
}

export const inRange = (from: number, to: number) => (e: FixtureEvent) => e.ts >= from && e.ts < to
