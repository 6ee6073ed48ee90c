/**
 * `burnwatch report` against the real ClickHouse engine on fixture data: the table, CSV and
 * FOCUS totals equal ClickHouse's own sums of usage_events for the month (per team and
 * environment), every mandatory FOCUS 1.2 column is present, the meter split adds up to the
 * stored cost and the tokens, and bad input says what was wrong.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { parseConfigFile } from '../../shared/config.ts'
import { buildReport } from '../../services/report/run.ts'
import { fromPico, toPico } from '../../services/report/query.ts'
import { openTestClickHouse, testClickHouseEnv } from '../support/clickhouse.ts'
import { runCli } from '../support/pipeline.ts'
import { insertShowback, showbackRows } from '../support/showback-fixtures.ts'

/**
 * Every column with "Feature level: Mandatory" in FOCUS 1.2, read from the specification
 * (FinOps-Open-Cost-and-Usage-Spec/FOCUS_Spec, tag v1.2, specification/columns/*.md), kept here
 * independently of the product's column list.
 */
const FOCUS_1_2_MANDATORY = [
  'BilledCost', 'BillingAccountId', 'BillingAccountName', 'BillingCurrency', 'BillingPeriodEnd', 'BillingPeriodStart',
  'ChargeCategory', 'ChargeClass', 'ChargeDescription', 'ChargePeriodEnd', 'ChargePeriodStart', 'ContractedCost',
  'EffectiveCost', 'InvoiceIssuerName', 'ListCost', 'PricingQuantity', 'PricingUnit', 'ProviderName', 'PublisherName',
  'ServiceCategory', 'ServiceName',
]

/** A minimal RFC 4180 reader (quoted cells with commas, quotes and newlines). */
function parseCsv(text: string): Record<string, string>[] {
  const records: string[][] = []
  let row: string[] = []
  let cell = ''
  let quoted = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"'
        i++
      } else if (c === '"') quoted = false
      else cell += c
    } else if (c === '"') quoted = true
    else if (c === ',' || c === '\n') {
      row.push(cell)
      cell = ''
      if (c === '\n') {
        records.push(row)
        row = []
      }
    } else cell += c
  }
  const [head, ...body] = records
  return body.map((r) => Object.fromEntries(head!.map((h, i) => [h, r[i] ?? ''])))
}

let h: ClickHouseHandle
const env = testClickHouseEnv(inject('clickhouse'))
const file = parseConfigFile('prices:\n  - model: bw-model\n    input: 0.2\n    output: 0.6\n')

beforeAll(async () => {
  h = await openTestClickHouse(inject('clickhouse'), { database: env.CLICKHOUSE_DATABASE! })
  await insertShowback(h, showbackRows())
})
afterAll(async () => {
  await h?.close()
})

async function truth(where = '1'): Promise<{ team: string; environment: string; cost: string; requests: number; input: number; output: number; cache_read: number }[]> {
  const rs = await h.client.query({
    query: `SELECT team, environment, toString(sum(cost_usd)) AS cost, count() AS requests, sum(input_tokens) AS input, sum(output_tokens) AS output, sum(cache_read_tokens) AS cache_read
            FROM usage_events WHERE timestamp >= '2026-11-01 00:00:00' AND timestamp < '2026-12-01 00:00:00' AND ${where} GROUP BY team, environment ORDER BY team, environment`,
    format: 'JSONEachRow',
  })
  return (await rs.json<Record<string, string | number>>()).map((r) => ({ team: String(r.team), environment: String(r.environment), cost: String(r.cost), requests: Number(r.requests), input: Number(r.input), output: Number(r.output), cache_read: Number(r.cache_read) }))
}

const byKey = <T extends { team: string; environment: string }>(rows: T[], f: (r: T) => bigint | number) => {
  const m = new Map<string, bigint>()
  for (const r of rows) m.set(`${r.team}/${r.environment}`, (m.get(`${r.team}/${r.environment}`) ?? 0n) + BigInt(f(r)))
  return Object.fromEntries([...m].sort())
}

describe('burnwatch report', () => {
  it('CSV: spend, requests and tokens per team and environment equal ClickHouse sums for the month', async () => {
    const t = await truth()
    expect(t.map((x) => `${x.team}/${x.environment}`)).toEqual(['billing/dev', 'billing/production', 'search/production', 'search/staging'])
    const r = await buildReport(h.client, file, { month: '2026-11', format: 'csv' })
    const rows = parseCsv(r.text) as unknown as { team: string; environment: string; cost_usd: string; requests: string; input_tokens: string; cache_read_tokens: string }[]
    expect(byKey(rows, (x) => toPico(x.cost_usd))).toEqual(byKey(t, (x) => toPico(x.cost)))
    expect(byKey(rows, (x) => Number(x.requests))).toEqual(byKey(t, (x) => x.requests))
    expect(byKey(rows, (x) => Number(x.input_tokens))).toEqual(byKey(t, (x) => x.input))
    expect(r.totalUsd).toBe(fromPico(t.reduce((s, x) => s + toPico(x.cost), 0n)))
    // the boundary rows: the first millisecond of November is in, the last of October is not
    expect(toPico(r.totalUsd)).toBeGreaterThan(toPico('0.777777'))
  })

  it('--team filters to one team, and the table shows its total', async () => {
    const t = (await truth("team = 'search'")).reduce((s, x) => s + toPico(x.cost), 0n)
    const r = await buildReport(h.client, file, { month: '2026-11', team: 'search', format: 'table' })
    expect(r.totalUsd).toBe(fromPico(t))
    const total = r.text.split('\n').find((l) => l.startsWith('total'))!
    expect(total).toContain((Number(t) / 1e12).toFixed(4))
    expect(r.text).toContain('staging')
    expect(r.text).not.toMatch(/^billing/m)
  })

  it('FOCUS: every mandatory FOCUS 1.2 column; BilledCost, tokens and Tags add up to ClickHouse', async () => {
    const t = await truth()
    const r = await buildReport(h.client, file, { month: '2026-11', format: 'focus' })
    const header = r.text.slice(0, r.text.indexOf('\n')).split(',')
    for (const c of FOCUS_1_2_MANDATORY) expect(header, `FOCUS 1.2 mandatory column ${c}`).toContain(c)
    const rows = parseCsv(r.text)
    expect(rows.length).toBeGreaterThan(100)
    const withKey = rows.map((x) => ({ ...x, ...(JSON.parse(x.Tags!) as { team: string; environment: string; endpoint: string }) }) as Record<string, string> & { team: string; environment: string })
    expect(byKey(withKey, (x) => toPico(x.BilledCost!))).toEqual(byKey(t, (x) => toPico(x.cost)))
    expect(byKey(withKey, (x) => toPico(x.EffectiveCost!))).toEqual(byKey(t, (x) => toPico(x.cost)))
    const tokens = (meters: string[]) => byKey(withKey.filter((x) => meters.includes(x.SkuMeter!)), (x) => Number(x.ConsumedQuantity))
    // input = uncached + cached + cache write; output on its own
    expect(tokens(['Input Tokens', 'Cached Input Tokens', 'Cache Write Tokens'])).toEqual(byKey(t, (x) => x.input))
    expect(tokens(['Output Tokens'])).toEqual(byKey(t, (x) => x.output))
    expect(tokens(['Cached Input Tokens'])).toEqual(byKey(t.filter((x) => x.cache_read > 0), (x) => x.cache_read))
    for (const x of rows) {
      expect(x).toMatchObject({ BillingCurrency: 'USD', ChargeCategory: 'Usage', ChargeClass: '', ConsumedUnit: 'Tokens', ServiceCategory: 'AI and Machine Learning', BillingPeriodStart: '2026-11-01T00:00:00Z', BillingPeriodEnd: '2026-12-01T00:00:00Z' })
      expect(x.ChargePeriodStart).toMatch(/^2026-11-\d\dT00:00:00Z$/)
      expect(Date.parse(x.ChargePeriodEnd!) - Date.parse(x.ChargePeriodStart!)).toBe(86_400_000)
      for (const c of FOCUS_1_2_MANDATORY.filter((c) => c !== 'ChargeClass')) expect(x[c], c).not.toBe('')
    }
    expect(new Set(rows.map((x) => x.SkuMeter))).toEqual(new Set(['Input Tokens', 'Cached Input Tokens', 'Cache Write Tokens', 'Output Tokens']))
  })

  it('the CLI prints the report and explains bad input', async () => {
    const ok = await runCli(['report', '--month', '2026-11', '--team', 'billing', '--format', 'csv'], env)
    expect(ok.code).toBe(0)
    expect(ok.text.split('\n')[0]).toMatch(/^team,environment,endpoint,model/)
    expect(ok.text).toContain(`"invoice 'explain'"`.replace(/"/g, '')) // an endpoint with a quote, as data
    const month = await runCli(['report', '--month', '2026-13'], env)
    expect(month.code).toBe(1)
    expect(month.text).toMatch(/--month must be a month as YYYY-MM, e\.g\. --month 2026-11 \(got '2026-13'\)/)
    const format = await runCli(['report', '--month', '2026-11', '--format', 'xlsx'], env)
    expect(format.text).toMatch(/--format must be one of table, csv, focus/)
    const missing = await runCli(['report'], env)
    expect(missing.text).toMatch(/--month YYYY-MM is required/)
    // a team name that is SQL reaches ClickHouse as a parameter: an empty report, not an error
    const sql = await runCli(['report', '--month', '2026-11', '--team', "x' OR 1=1 --", '--format', 'csv'], env)
    expect(sql.code).toBe(0)
    expect(sql.text.trim().split('\n')).toHaveLength(1)
  })
})
