/**
 * Showback numbers from ClickHouse: spend, requests and tokens per team, environment, endpoint,
 * model and provider over a UTC period, read from the `cost_hourly_env` rollup (no TTL, so old
 * months stay reportable). Query builders return `{ query, query_params }`: the team, month and
 * week reach ClickHouse only as parameters.
 */
import type { ClickHouseClient } from '@clickhouse/client'
import { ValidationError } from '../../shared/errors.ts'

export interface SpendRow {
  team: string
  environment: string
  endpoint: string
  model: string
  provider: string
  /** the UTC day (YYYY-MM-DD) when grouped by day, '' otherwise */
  day: string
  requests: number
  errors: number
  input_tokens: number
  output_tokens: number
  cache_read_tokens: number
  cache_write_tokens: number
  reasoning_tokens: number
  /** exact decimal text, 12 places */
  cost_usd: string
  unpriced_requests: number
}

export interface Period {
  /** inclusive, ms since epoch (UTC) */
  from: number
  /** exclusive */
  to: number
}

/** `YYYY-MM` → the UTC month; a clear error otherwise. */
export function parseMonth(month: string): Period & { month: string } {
  const m = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(month)
  if (!m) throw new ValidationError(`--month must be a month as YYYY-MM, e.g. --month 2026-11 (got '${month.slice(0, 40)}')`)
  const y = Number(m[1])
  const mo = Number(m[2]) - 1
  return { month, from: Date.UTC(y, mo, 1), to: Date.UTC(y, mo + 1, 1) }
}

export function spendQuery(p: Period & { team?: string | null; byDay?: boolean }): { query: string; query_params: Record<string, unknown> } {
  return {
    query: `SELECT team, environment, endpoint, model, provider, if({by_day:Bool}, toString(toDate(hour)), '') AS day,
       sum(requests) AS requests, sum(errors) AS errors, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens,
       sum(cache_read_tokens) AS cache_read_tokens, sum(cache_write_tokens) AS cache_write_tokens, sum(reasoning_tokens) AS reasoning_tokens,
       toString(sum(cost_usd)) AS cost_text, sum(unpriced_requests) AS unpriced_requests
FROM cost_hourly_env
WHERE hour >= fromUnixTimestamp64Milli({from:Int64}) AND hour < fromUnixTimestamp64Milli({to:Int64})
  AND ({all_teams:Bool} OR team = {team:String})
GROUP BY team, environment, endpoint, model, provider, day
ORDER BY team, environment, sum(cost_usd) DESC, endpoint, model, provider, day`,
    query_params: { from: p.from, to: p.to, by_day: p.byDay === true, all_teams: !p.team, team: p.team ?? '' },
  }
}

const NUMERIC = ['requests', 'errors', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens', 'unpriced_requests'] as const

export async function querySpend(client: ClickHouseClient, p: Period & { team?: string | null; byDay?: boolean }): Promise<SpendRow[]> {
  const rs = await client.query({ ...spendQuery(p), format: 'JSONEachRow' })
  const rows = await rs.json<Record<string, unknown>>()
  return rows.map((r) => {
    const { cost_text, ...rest } = r
    const out = { ...rest, cost_usd: String(cost_text) } as unknown as SpendRow
    for (const k of NUMERIC) out[k] = Number(r[k])
    return out
  })
}

/** Exact decimal sums: cost strings as integers of 10^-12 USD. */
export const PICO = 10n ** 12n
export function toPico(cost: string): bigint {
  const neg = cost.startsWith('-')
  const [int = '0', frac = ''] = (neg ? cost.slice(1) : cost).split('.')
  const v = BigInt(int) * PICO + BigInt((frac + '000000000000').slice(0, 12))
  return neg ? -v : v
}
export function fromPico(v: bigint, places = 12): string {
  const neg = v < 0n
  const a = neg ? -v : v
  const int = a / PICO
  const frac = (a % PICO).toString().padStart(12, '0').slice(0, places)
  return `${neg ? '-' : ''}${int}${places ? `.${frac}` : ''}`
}
export const sumCost = (rows: readonly { cost_usd: string }[]): bigint => rows.reduce((s, r) => s + toPico(r.cost_usd), 0n)
