/**
 * The weekly digest against the real ClickHouse engine on fixture data, sent through the real
 * @slack/web-api client to the loopback fake: totals, week-over-week and top lists equal
 * ClickHouse's own sums over the team's local week; budget variance and forecast per environment;
 * the week's alerts and how they ended; one message per team and week however often (and however
 * concurrently) it is sent, a failed post retried, and the schedule in each team's time zone.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { loadConfig, type AppConfig } from '../../shared/config.ts'
import { buildDigest } from '../../services/digest/build.ts'
import { renderDigest } from '../../services/digest/render.ts'
import { createDigestScheduler } from '../../services/digest/scheduler.ts'
import { createSlackDigestPoster, sendDigest } from '../../services/digest/send.ts'
import { parseWeek } from '../../services/digest/week.ts'
import { fromPico, toPico } from '../../services/report/query.ts'
import { openTestClickHouse, testClickHouseEnv } from '../support/clickhouse.ts'
import { startFakeSlack, type FakeSlack } from '../support/fake-slack.ts'
import { runCli, testLogger } from '../support/pipeline.ts'
import { insertShowback, showbackRows } from '../support/showback-fixtures.ts'

const CONFIG = `
teams:
  - name: search
    slack_channel: "#search-spend"
    timezone: Europe/Berlin
    monthly_budget_usd: 100
    environment_budgets_usd: { staging: 10 }
  - name: billing
    slack_channel: "#billing-spend"
    timezone: America/New_York
digest:
  day: monday
  time: "09:00"
`

let h: ClickHouseHandle
let fake: FakeSlack
let env: Record<string, string>
let config: AppConfig

beforeAll(async () => {
  fake = await startFakeSlack({ channels: ['#search-spend', '#billing-spend'] })
  const dir = mkdtempSync(join(tmpdir(), 'bw-digest-'))
  writeFileSync(join(dir, 'burnwatch.yaml'), CONFIG)
  env = { ...testClickHouseEnv(inject('clickhouse')), BURNWATCH_CONFIG: join(dir, 'burnwatch.yaml'), SLACK_BOT_TOKEN: fake.token, SLACK_API_URL: fake.url, LOG_LEVEL: 'warn' }
  config = loadConfig(env)
  h = await openTestClickHouse(inject('clickhouse'), { database: env.CLICKHOUSE_DATABASE! })
  await insertShowback(h, showbackRows())
  // alerts of search in week 47 (Berlin): one resolved, one still firing, one in staging; one of week 46
  const alert = (alert_id: string, status: string, detected: string, extra: Record<string, unknown> = {}) => ({
    alert_id, status, team: 'search', endpoint: 'POST /v1/answer', model: 'gpt-4o-mini', signal: 'cost_per_request', direction: 'up', baseline: 0.001, current: 0.0015, change_pct: 50,
    started_at: '2026-11-17 10:00:00.000', detected_at: detected, deployment_ids: [], drivers: '{}', severity: 'page', monthly_impact_usd: 100, ...extra,
  })
  await h.client.insert({
    table: 'alerts',
    format: 'JSONEachRow',
    values: [
      alert('a-resolved', 'firing', '2026-11-17 10:05:00.000'),
      alert('a-resolved', 'resolved', '2026-11-18 08:00:00.000', { change_pct: 5 }),
      alert('a-open', 'firing', '2026-11-20 12:00:00.000', { signal: 'burn_rate', endpoint: null, model: null, change_pct: 35 }),
      alert('a-stg@staging', 'firing', '2026-11-21 09:00:00.000', { change_pct: 80 }),
      alert('a-old', 'firing', '2026-11-12 09:00:00.000'),
    ],
  })
})
afterAll(async () => {
  await h?.close()
  await fake?.close()
})

async function sumOver(team: string, from: number, to: number, by?: string): Promise<Record<string, string>> {
  const rs = await h.client.query({
    query: `SELECT ${by ?? "''"} AS k, toString(sum(cost_usd)) AS cost FROM usage_events
            WHERE team = {team:String} AND timestamp >= fromUnixTimestamp64Milli({from:Int64}) AND timestamp < fromUnixTimestamp64Milli({to:Int64}) GROUP BY k`,
    query_params: { team, from, to },
    format: 'JSONEachRow',
  })
  return Object.fromEntries((await rs.json<{ k: string; cost: string }>()).map((r) => [r.k, fromPico(toPico(r.cost))]))
}

describe('weekly digest', () => {
  it('totals, week over week, top models and endpoints equal ClickHouse sums over the local week', async () => {
    const week = parseWeek('2026-W47', 'Europe/Berlin')
    const prev = parseWeek('2026-W46', 'Europe/Berlin')
    const d = await buildDigest(h.client, config.file, 'search', week)
    expect(d.total).toBe((await sumOver('search', week.from, week.to))['']!)
    expect(d.previousTotal).toBe((await sumOver('search', prev.from, prev.to))['']!)
    const byModel = await sumOver('search', week.from, week.to, 'model')
    const prevByModel = await sumOver('search', prev.from, prev.to, 'model')
    expect(Object.fromEntries(d.models.map((m) => [m.name, m.cost]))).toEqual(byModel)
    for (const m of d.models) {
      const expected = Math.round((Number(toPico(byModel[m.name]!) - toPico(prevByModel[m.name]!)) / Number(toPico(prevByModel[m.name]!))) * 1000) / 10
      expect(m.changePct).toBe(expected)
    }
    // the week after: search's answer traffic grew from 23 November, so its models changed week over week
    const w48 = parseWeek('2026-W48', 'Europe/Berlin')
    const d48 = await buildDigest(h.client, config.file, 'search', w48)
    const now48 = await sumOver('search', w48.from, w48.to, 'model')
    const before48 = await sumOver('search', week.from, week.to, 'model')
    for (const m of d48.models) {
      const before = Number(toPico(before48[m.name]!))
      expect(m.changePct).toBe(Math.round(((Number(toPico(now48[m.name]!)) - before) / before) * 1000) / 10)
    }
    expect(d48.models.find((m) => m.name === 'gpt-4o-mini')!.changePct).toBeGreaterThan(0)
    expect(d48.total).toBe((await sumOver('search', w48.from, w48.to))['']!)
    // ranked by spend, most first
    expect(d.models.map((m) => Number(m.cost))).toEqual(d.models.map((m) => Number(m.cost)).sort((a, b) => b - a))
    expect(Object.fromEntries(d.endpoints.map((m) => [m.name, m.cost]))).toEqual(await sumOver('search', week.from, week.to, 'endpoint'))
    expect(Object.fromEntries(d.environments.map((m) => [m.name, m.cost]))).toEqual(await sumOver('search', week.from, week.to, 'environment'))

    // budgets per environment: production from monthly_budget_usd, staging from environment_budgets_usd
    const mtd = await sumOver('search', Date.UTC(2026, 10, 1), week.to, 'environment')
    const prod = d.forecasts.find((f) => f.environment === 'production')!
    const stg = d.forecasts.find((f) => f.environment === 'staging')!
    expect(Number(prod.monthToDate)).toBeCloseTo(Number(mtd.production), 2)
    expect(prod.budget).toBe(100)
    expect(stg.budget).toBe(10)
    const elapsed = (week.to - Date.UTC(2026, 10, 1)) / 86_400_000
    expect(prod.variance!).toBeCloseTo(Number(mtd.production) - (100 * elapsed) / 30, 6)
    expect(prod.forecastLow).toBeLessThanOrEqual(prod.forecast)
    expect(prod.forecastHigh).toBeGreaterThanOrEqual(prod.forecast)
    expect(prod.forecast).toBeCloseTo((Number(mtd.production) / elapsed) * 30, 6)

    expect(d.alerts.map((a) => [a.alert_id, a.outcome, a.environment])).toEqual([
      ['a-resolved', 'resolved', 'production'],
      ['a-open', 'still firing', 'production'],
      ['a-stg@staging', 'still firing', 'staging'],
    ])
    const text = renderDigest(d)
    expect(text).toContain('*Weekly AI spend digest — search, 2026-W47* (Europe/Berlin)')
    expect(text).toMatch(/cost_per_request \+50\.0% on POST \/v1\/answer \/ gpt-4o-mini since 2026-11-17 10:00:00\.000 UTC — resolved at 2026-11-18 08:00:00/)
    expect(text).toMatch(/staging: \$[\d.,]+ month to date; forecast \$[\d.,]+ \(range/)
  })

  it('is sent once per team and week: repeated and concurrent sends post one message; a failed post is retried', async () => {
    const poster = createSlackDigestPoster(config.slack)
    const week = parseWeek('2026-W47', 'Europe/Berlin')
    const logger = testLogger()
    const runs = await Promise.all([1, 2, 3].map(() => sendDigest({ client: h.client, config, poster, team: 'search', week, logger })))
    expect(runs.filter((r) => r.status === 'sent')).toHaveLength(1)
    expect((await sendDigest({ client: h.client, config, poster, team: 'search', week, logger })).status).toBe('already_sent')
    expect(fake.posts('#search-spend')).toHaveLength(1)
    expect(fake.posts('#search-spend')[0]!.text).toContain('2026-W47')

    // the CLI says so too, and prints without sending
    const again = await runCli(['digest', '--team', 'search', '--week', '2026-W47', '--send'], env)
    expect(again.text).toMatch(/already sent/)
    const printed = await runCli(['digest', '--team', 'search', '--week', '2026-W46'], env)
    expect(printed.code).toBe(0)
    expect(printed.text).toContain('search, 2026-W46')
    expect(fake.posts('#search-spend')).toHaveLength(1)

    // Slack refuses: recorded as failed, and the next attempt sends
    fake.failChannel('#search-spend', 'not_in_channel')
    const w45 = parseWeek('2026-W45', 'Europe/Berlin')
    await expect(sendDigest({ client: h.client, config, poster, team: 'search', week: w45, logger })).rejects.toThrow(/not_in_channel.*burnwatch doctor/)
    fake.failChannel('#search-spend', null)
    expect((await sendDigest({ client: h.client, config, poster, team: 'search', week: w45, logger })).status).toBe('sent')
    expect(fake.posts('#search-spend')).toHaveLength(2)
  })

  it("goes out on schedule in each team's time zone, once", async () => {
    const scheduler = createDigestScheduler({ client: h.client, config, poster: createSlackDigestPoster(config.slack), logger: testLogger() })
    // Monday 08:30 UTC: 09:30 in Berlin (search's W47 is already sent), 03:30 in New York (not due)
    expect(await scheduler.tick(Date.UTC(2026, 10, 23, 8, 30))).toEqual([])
    expect(fake.posts('#billing-spend')).toHaveLength(0)
    // 09:30 in New York
    expect(await scheduler.tick(Date.UTC(2026, 10, 23, 14, 30))).toEqual(['billing'])
    expect(await scheduler.tick(Date.UTC(2026, 10, 23, 15, 30))).toEqual([])
    expect(fake.posts('#billing-spend')).toHaveLength(1)
    expect(fake.posts('#billing-spend')[0]!.text).toContain('billing, 2026-W47* (America/New_York)')
  })

  it('explains bad input', async () => {
    expect((await runCli(['digest', '--team', 'nobody'], env)).text).toMatch(/--team nobody: no such team in the config \(teams: search, billing\)/)
    expect((await runCli(['digest', '--team', 'search', '--week', '2026-48'], env)).text).toMatch(/--week must be an ISO week as YYYY-Www/)
    expect((await runCli(['digest'], env)).text).toMatch(/--team is required/)
    const noSlack = await runCli(['digest', '--team', 'search', '--send'], { ...env, SLACK_BOT_TOKEN: '' })
    expect(noSlack.text).toMatch(/sending a digest needs Slack: set SLACK_BOT_TOKEN/)
  })
})
