/**
 * Showback output formats (pure): an aligned table for people, CSV for spreadsheets, and FOCUS
 * 1.2 (FinOps Open Cost and Usage Specification) CSV for cost tools. Every amount comes from the
 * exact ClickHouse decimals, so each format's total equals `sum(cost_usd)` of the period.
 */
import type { Rates } from '../aggregator/pricing.ts'
import { fromPico, sumCost, toPico, type SpendRow } from './query.ts'

export type ReportFormat = 'table' | 'csv' | 'focus'
export const REPORT_FORMATS: readonly ReportFormat[] = ['table', 'csv', 'focus']

const usd = (pico: bigint) => (Number(pico) / 1e12).toFixed(4)

export function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : String(v)
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s
}
export const csvLine = (cells: readonly unknown[]) => cells.map(csvCell).join(',') + '\n'

const totalTokens = (r: SpendRow) => r.input_tokens + r.output_tokens

/** Cost per request in USD, 6 decimals; '' without requests. */
function perRequest(cost: bigint, requests: number): string {
  return requests > 0 ? (Number(cost) / 1e12 / requests).toFixed(6) : ''
}

const CSV_COLUMNS = ['team', 'environment', 'endpoint', 'model', 'provider', 'requests', 'errors', 'cost_usd', 'cost_per_request_usd', 'input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_write_tokens', 'reasoning_tokens', 'unpriced_requests'] as const

export function formatCsv(rows: readonly SpendRow[]): string {
  let out = csvLine(CSV_COLUMNS)
  for (const r of rows) {
    const cost = toPico(r.cost_usd)
    out += csvLine([r.team, r.environment, r.endpoint, r.model, r.provider, r.requests, r.errors, fromPico(cost), perRequest(cost, r.requests), r.input_tokens, r.output_tokens, r.cache_read_tokens, r.cache_write_tokens, r.reasoning_tokens, r.unpriced_requests])
  }
  return out
}

export function formatTable(rows: readonly SpendRow[], title: string): string {
  const head = ['team', 'environment', 'endpoint', 'model', 'requests', 'cost USD', 'USD/request', 'tokens']
  const body = rows.map((r) => {
    const cost = toPico(r.cost_usd)
    return [r.team, r.environment, r.endpoint, r.model, String(r.requests), usd(cost), perRequest(cost, r.requests), String(totalTokens(r))]
  })
  const total = sumCost(rows)
  const requests = rows.reduce((s, r) => s + r.requests, 0)
  body.push(['total', '', '', '', String(requests), usd(total), perRequest(total, requests), String(rows.reduce((s, r) => s + totalTokens(r), 0))])
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)))
  const numeric = new Set([4, 5, 6, 7])
  const line = (cells: string[]) => cells.map((c, i) => (numeric.has(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join('  ').trimEnd() + '\n'
  return `${title}\n${line(head)}${line(widths.map((w) => '-'.repeat(w)))}${body.map(line).join('')}`
}

/**
 * The mandatory columns of FOCUS 1.2 (specification/columns/*.md with "Feature level: Mandatory"
 * in FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, tag v1.2), then the conditional and recommended
 * ones that apply to metered AI usage.
 */
export const FOCUS_COLUMNS = [
  'BilledCost',
  'BillingAccountId',
  'BillingAccountName',
  'BillingCurrency',
  'BillingPeriodEnd',
  'BillingPeriodStart',
  'ChargeCategory',
  'ChargeClass',
  'ChargeDescription',
  'ChargePeriodEnd',
  'ChargePeriodStart',
  'ContractedCost',
  'EffectiveCost',
  'InvoiceIssuerName',
  'ListCost',
  'PricingQuantity',
  'PricingUnit',
  'ProviderName',
  'PublisherName',
  'ServiceCategory',
  'ServiceName',
  // conditional / recommended
  'ChargeFrequency',
  'ConsumedQuantity',
  'ConsumedUnit',
  'ServiceSubcategory',
  'SkuId',
  'SkuMeter',
  'SubAccountId',
  'SubAccountName',
  'Tags',
  // Burnwatch's own (FOCUS custom columns start with x_)
  'x_Environment',
  'x_Endpoint',
  'x_Model',
  'x_Requests',
] as const

type Meter = { name: string; quantity: number; rate: number }

/** The token meters of a row with the quantity and (when known) the unit price that weights its share of the cost. */
function meters(r: SpendRow, rates: Rates | null): Meter[] {
  const uncached = Math.max(0, r.input_tokens - r.cache_read_tokens - r.cache_write_tokens)
  const m: Meter[] = [
    { name: 'Input Tokens', quantity: uncached, rate: rates?.input ?? 1 },
    { name: 'Cached Input Tokens', quantity: r.cache_read_tokens, rate: rates?.cacheRead ?? 1 },
    { name: 'Cache Write Tokens', quantity: r.cache_write_tokens, rate: rates?.cacheWrite ?? 1 },
    { name: 'Output Tokens', quantity: r.output_tokens, rate: rates?.output ?? 1 },
  ]
  return m.filter((x) => x.quantity > 0)
}

/**
 * Splits a row's exact cost over its meters in proportion to quantity × unit price (quantity
 * alone when the model has no price), in integer picodollars, the rounding remainder on the
 * largest share: the parts add up to the stored cost exactly.
 */
export function splitCost(cost: bigint, ms: readonly Meter[]): bigint[] {
  if (!ms.length) return []
  const weights = ms.map((m) => m.quantity * m.rate)
  const total = weights.reduce((s, w) => s + w, 0)
  const SCALE = 1_000_000_000
  const parts = weights.map((w) => (total > 0 ? (cost * BigInt(Math.round((w / total) * SCALE))) / BigInt(SCALE) : 0n))
  const rest = cost - parts.reduce((s, p) => s + p, 0n)
  let big = 0
  for (let i = 1; i < weights.length; i++) if (weights[i]! > weights[big]!) big = i
  parts[big] = parts[big]! + rest
  return parts
}

const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
const DAY = 86_400_000

export interface FocusContext {
  /** UTC billing period [from, to) */
  from: number
  to: number
  rates(model: string, provider: string): Rates | null
}

/**
 * FOCUS 1.2 rows as CSV: one row per day, series and meter (rows must be grouped by day). A row
 * with cost but no tokens (GPU seconds, a reported cost without usage) is one `Requests` row.
 */
export function formatFocus(rows: readonly SpendRow[], ctx: FocusContext): string {
  let out = csvLine(FOCUS_COLUMNS)
  for (const r of rows) {
    const dayStart = r.day ? Date.parse(`${r.day}T00:00:00Z`) : ctx.from
    const dayEnd = r.day ? dayStart + DAY : ctx.to
    const provider = r.provider || 'unknown'
    const cost = toPico(r.cost_usd)
    let ms = meters(r, ctx.rates(r.model, r.provider))
    if (!ms.length) ms = [{ name: 'Requests', quantity: r.requests, rate: 1 }]
    const parts = splitCost(cost, ms)
    ms.forEach((m, i) => {
      const c = fromPico(parts[i]!)
      const unit = m.name === 'Requests' ? 'Requests' : 'Tokens'
      const rec: Record<(typeof FOCUS_COLUMNS)[number], unknown> = {
        BilledCost: c,
        BillingAccountId: `burnwatch:${r.team}`,
        BillingAccountName: `${r.team} (Burnwatch showback)`,
        BillingCurrency: 'USD',
        BillingPeriodEnd: iso(ctx.to),
        BillingPeriodStart: iso(ctx.from),
        ChargeCategory: 'Usage',
        ChargeClass: null,
        ChargeDescription: `${m.name} of ${r.model} for ${r.endpoint} (${r.environment})`,
        ChargePeriodEnd: iso(dayEnd),
        ChargePeriodStart: iso(dayStart),
        ContractedCost: c,
        EffectiveCost: c,
        InvoiceIssuerName: provider,
        ListCost: c,
        PricingQuantity: m.quantity,
        PricingUnit: unit,
        ProviderName: provider,
        PublisherName: provider,
        ServiceCategory: 'AI and Machine Learning',
        ServiceName: r.model,
        ChargeFrequency: 'Usage-Based',
        ConsumedQuantity: m.quantity,
        ConsumedUnit: unit,
        ServiceSubcategory: 'Generative AI',
        SkuId: `${provider}/${r.model}/${m.name.toLowerCase().replace(/ /g, '-')}`,
        SkuMeter: m.name,
        SubAccountId: r.team,
        SubAccountName: r.team,
        Tags: JSON.stringify({ team: r.team, endpoint: r.endpoint, environment: r.environment }),
        x_Environment: r.environment,
        x_Endpoint: r.endpoint,
        x_Model: r.model,
        // the requests once per series and day, on its first meter row
        x_Requests: i === 0 ? r.requests : 0,
      }
      out += csvLine(FOCUS_COLUMNS.map((k) => rec[k]))
    })
  }
  return out
}
