// Environment as part of the series identity: keys, windows and detection keep staging apart
// from production; budgets per environment; the notify-without-paging rule.
import { describe, expect, it } from 'vitest'
import type { AlertRecord } from '../../schemas/alert.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import { seriesId } from '../../schemas/series.ts'
import { createDetectorCore, defaultDetectorConfig } from '../../services/detector/core/index.ts'
import { createEnvironmentDetectorCore, environmentConfig } from '../../services/detector/environments.ts'
import { createWindower } from '../../services/aggregator/windows.ts'
import { renderPage } from '../../services/notifier/render.ts'
import { parseSeriesKey, seriesKey } from '../../shared/producer/index.ts'
import { environmentBudget, environmentPages, parseConfigFile } from '../../shared/config.ts'
import { Rng } from '../../eval/rng.ts'
import { makeWindow } from '../support/windows.ts'

const M = 60_000
const T0 = Date.UTC(2026, 0, 5)

/** `count` windows from `from` of one series at `n` requests a window; cost per request × `level` (noise cv ≈ 0.3). */
function steady(rng: Rng, from: number, count: number, level: number, environment?: string, n = 150): WindowRecord[] {
  return Array.from({ length: count }, (_, k) => {
    let c = 0
    let q = 0
    for (let r = 0; r < n; r++) {
      const cost = Math.max(1e-6, 0.0003 * level * (1 + 0.3 * rng.normal()))
      c += cost
      q += cost * cost
    }
    const w = makeWindow({ team: 'search', endpoint: 'POST /v1/chat', start: T0 + (from + k) * M, requests: n, input: n * 1500, output: n * 150, cost: c, costSq: q, deployment: level > 1 ? 'v2' : 'v1' })
    return environment ? { ...w, environment } : w
  })
}

const byTime = (ws: WindowRecord[]) => [...ws].sort((a, b) => (a.window_start < b.window_start ? -1 : a.window_start > b.window_start ? 1 : 0))
const runAll = (core: { onWindow(w: WindowRecord): AlertRecord[]; flush(): AlertRecord[] }, ws: WindowRecord[]) => [...ws.flatMap((w) => core.onWindow(w)), ...core.flush()]

describe('series identity with environments', () => {
  it('production keeps its key and id; another environment is a different key and id', () => {
    const s = { team: 'search', endpoint: 'POST /v1/chat', model: 'gpt-4o' }
    expect(seriesKey(s)).toBe('["search","POST /v1/chat","gpt-4o"]')
    expect(seriesKey({ ...s, environment: 'production' })).toBe(seriesKey(s))
    expect(seriesKey({ ...s, environment: 'staging' })).toBe('["search","POST /v1/chat","gpt-4o","staging"]')
    expect(parseSeriesKey(seriesKey({ ...s, environment: 'staging' }))).toEqual({ ...s, environment: 'staging' })
    expect(seriesId({ ...s, environment: 'production' })).toBe(seriesId(s))
    expect(seriesId({ ...s, environment: 'staging' })).not.toBe(seriesId(s))
    // a team name that looks like the environment prefix cannot collide
    expect(seriesId({ ...s, environment: 'staging' })).not.toBe(seriesId({ ...s, team: '@7:stagingsearch' }))
  })

  it('the windower closes one window per environment of a series', () => {
    const w = createWindower({ windowMs: M, allowedLatenessMs: 0, idleAdvance: false })
    const e = { team: 'search', endpoint: 'e', model: 'm', ts: T0 + 1000, cost: 0.01, input: 10, output: 5, cacheRead: 0, cacheWrite: 0, costInput: 0.004, costCacheRead: 0, costCacheWrite: 0, costOutput: 0.006, error: false, unpriced: false, deployment: undefined }
    for (const environment of ['production', 'staging', 'staging', undefined]) w.add('p0', seriesId({ ...e, environment }), { ...e, environment }, 0)
    const closed = w.flush()
    expect(closed.map((x) => [x.environment, x.requests])).toEqual([
      [undefined, 2],
      ['staging', 2],
    ])
  })
})

describe('detection per environment', () => {
  it('staging never moves a production baseline: production alerts are those of production alone', () => {
    const rng = new Rng(3)
    const production = steady(rng, 0, 260, 1)
    // the same series in staging runs a costlier build; a load test multiplies its traffic from window 150
    const staging = [...steady(rng, 0, 150, 3, 'staging', 30), ...steady(rng, 150, 110, 3, 'staging', 600)]
    const alone = runAll(createDetectorCore(defaultDetectorConfig), production)
    const mixed = runAll(createEnvironmentDetectorCore(defaultDetectorConfig), byTime([...production, ...staging]))
    expect(mixed.filter((a) => a.environment === undefined)).toEqual(alone)
    // staging's load test is a break of staging, marked so (and routable as notify-only)
    expect(mixed.filter((a) => a.environment === 'staging').map((a) => [a.status, a.signal, a.alert_id.endsWith('@staging')])).toEqual([['firing', 'burn_rate', true]])
    // without environments both are one series (their windows summed): the load test pages as a production break
    const merged = production.map((p, k) => {
      const q = staging[k]!
      return { ...p, requests: p.requests + q.requests, input_tokens: p.input_tokens + q.input_tokens, output_tokens: p.output_tokens + q.output_tokens, cost_usd: p.cost_usd + q.cost_usd, cost_sq_sum: p.cost_sq_sum + q.cost_sq_sum }
    })
    const oneCore = runAll(createDetectorCore(defaultDetectorConfig), merged)
    expect(oneCore.filter((a) => a.status === 'firing').length).toBeGreaterThan(0)
    expect(oneCore).not.toEqual(alone)
  })

  it('a break in staging is an alert of staging, with its own id', () => {
    const rng = new Rng(4)
    const production = steady(rng, 0, 260, 1)
    const staging = [...steady(rng, 0, 200, 1, 'staging'), ...steady(rng, 200, 60, 1.7, 'staging')]
    const alerts = runAll(createEnvironmentDetectorCore(defaultDetectorConfig), byTime([...production, ...staging]))
    const firing = alerts.filter((a) => a.status === 'firing' && a.endpoint !== null)
    expect(firing.length).toBeGreaterThan(0)
    for (const a of firing) {
      expect(a.environment).toBe('staging')
      expect(a.alert_id).toMatch(/@staging$/)
    }
    expect(alerts.filter((a) => a.environment === undefined)).toEqual(runAll(createDetectorCore(defaultDetectorConfig), production))
  })

  it('budgets per team and environment, and environments that notify without paging', () => {
    const file = parseConfigFile(`
teams:
  - name: search
    monthly_budget_usd: 1000
    environment_budgets_usd: { staging: 50 }
environments:
  - name: staging
    page: false
`)
    expect(environmentBudget(file, 'search', 'production')).toBe(1000)
    expect(environmentBudget(file, 'search', 'staging')).toBe(50)
    expect(environmentBudget(file, 'search', 'dev')).toBeNull()
    const config = { ...defaultDetectorConfig, teams: [{ name: 'search', monthlyBudgetUsd: 1000 }] }
    expect(environmentConfig(config, file, 'staging').teams).toEqual([{ name: 'search', monthlyBudgetUsd: 50 }])
    expect(environmentConfig(config, file, 'dev').teams).toEqual([{ name: 'search' }])
    expect(environmentConfig(config, file, 'production')).toBe(config)
    expect(environmentPages(file, 'staging')).toBe(false)
    expect(environmentPages(file, 'dev')).toBe(true)
    expect(environmentPages(file, 'production')).toBe(true)
  })

  it('a page names a non-production environment in its headline', () => {
    const rng = new Rng(4)
    const staging = [...steady(rng, 0, 200, 1, 'staging'), ...steady(rng, 200, 60, 1.7, 'staging')]
    const a = runAll(createEnvironmentDetectorCore(defaultDetectorConfig), staging).find((x) => x.status === 'firing')!
    const page = renderPage([a], { mention: null })
    expect(page.text).toMatch(/^\[staging\] search: /)
    expect(page.text).not.toContain('<!subteam')
  })
})
