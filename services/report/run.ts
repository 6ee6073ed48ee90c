/** `burnwatch report`: showback for a month from ClickHouse, as a table, CSV or FOCUS 1.2. */
import type { ClickHouseClient } from '@clickhouse/client'
import { catalogRates, type Rates } from '../aggregator/pricing.ts'
import type { ConfigFile } from '../../shared/config.ts'
import { ValidationError } from '../../shared/errors.ts'
import { formatCsv, formatFocus, formatTable, REPORT_FORMATS, type ReportFormat } from './format.ts'
import { parseMonth, querySpend, sumCost, fromPico } from './query.ts'

export interface ReportOptions {
  month: string
  team?: string | null
  format?: string
}

/** Unit prices for the FOCUS meter split: a config override first, then the catalog. */
export function ratesFor(file: Pick<ConfigFile, 'prices'>): (model: string, provider: string) => Rates | null {
  const cache = new Map<string, Rates | null>()
  return (model, provider) => {
    const key = `${provider}\u0000${model}`
    if (cache.has(key)) return cache.get(key)!
    const o = file.prices.find((p) => p.model === model && (p.provider === undefined || p.provider === provider))
    const r = o ? { input: o.input / 1e6, output: o.output / 1e6, cacheRead: (o.cache_read ?? o.input) / 1e6, cacheWrite: (o.cache_write ?? o.input) / 1e6 } : catalogRates(model, provider || undefined)
    cache.set(key, r)
    return r
  }
}

export async function buildReport(client: ClickHouseClient, file: ConfigFile, o: ReportOptions): Promise<{ text: string; totalUsd: string; rows: number }> {
  const format = (o.format ?? 'table') as ReportFormat
  if (!REPORT_FORMATS.includes(format)) throw new ValidationError(`--format must be one of ${REPORT_FORMATS.join(', ')} (got '${String(o.format).slice(0, 40)}')`)
  const period = parseMonth(o.month)
  const team = o.team ?? null
  if (team !== null && (team.length < 1 || team.length > 128)) throw new ValidationError('--team must be a team name of 1–128 characters, e.g. --team search')
  const rows = await querySpend(client, { ...period, team, byDay: format === 'focus' })
  const totalUsd = fromPico(sumCost(rows))
  const title = `Burnwatch showback ${o.month}${team ? ` for team ${team}` : ''} (UTC; from cost_hourly_env)`
  const text = format === 'focus' ? formatFocus(rows, { from: period.from, to: period.to, rates: ratesFor(file) }) : format === 'csv' ? formatCsv(rows) : formatTable(rows, title)
  return { text, totalUsd, rows: rows.length }
}
