import { describe, expect, it } from 'vitest'
import type { AlertRecord } from '../../schemas/alert.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import { createDetectorCore, defaultDetectorConfig, type DetectorConfig } from '../../services/detector/core/index.ts'
import { Rng } from '../../eval/rng.ts'
import { TEAM_MAX_SKEW_WINDOWS } from '../../services/detector/core/params.ts'
import { makeWindow } from '../support/windows.ts'

const M = 60_000
const T0 = Date.UTC(2026, 0, 5, 0, 0)
const PIN = 0.15e-6
const POUT = 0.6e-6

interface Phase {
  windows: number
  n: number
  inMult?: number
  deploy?: string
}

/** Windows of one series: requests with noisy token counts (cv ≈ 0.5), phases back to back. */
function series(phases: Phase[], seed = 1, endpoint = 'POST /v1/chat'): WindowRecord[] {
  const rng = new Rng(seed)
  const out: WindowRecord[] = []
  let t = T0
  for (const p of phases) {
    for (let w = 0; w < p.windows; w++, t += M) {
      let i = 0
      let o = 0
      let c = 0
      let q = 0
      for (let r = 0; r < p.n; r++) {
        const it = Math.max(10, Math.round(1500 * (p.inMult ?? 1) * (1 + 0.5 * rng.normal())))
        const ot = Math.max(1, Math.round(150 * (1 + 0.5 * rng.normal())))
        const cost = it * PIN + ot * POUT
        i += it
        o += ot
        c += cost
        q += cost * cost
      }
      out.push(makeWindow({ team: 'search', endpoint, start: t, windowMs: M, requests: p.n, input: i, output: o, cost: c, costSq: q, deployment: p.deploy ?? 'v1' }))
    }
  }
  return out
}

function run(windows: WindowRecord[], config: DetectorConfig = defaultDetectorConfig): AlertRecord[] {
  const d = createDetectorCore(config)
  const out: AlertRecord[] = []
  for (const w of windows) out.push(...d.onWindow(w))
  out.push(...d.flush())
  return out
}

const seriesCpr = (alerts: AlertRecord[]) => alerts.filter((a) => a.endpoint !== null && a.signal === 'cost_per_request')

describe('detector core: cost per request', () => {
  it('a +50% step fires once with the change point and the new deployment first', () => {
    const windows = series([
      { windows: 200, n: 200 },
      { windows: 60, n: 200, inMult: 1.6, deploy: 'v2' },
    ])
    const alerts = seriesCpr(run(windows)).filter((a) => a.status === 'firing')
    expect(alerts).toHaveLength(1)
    const a = alerts[0] as AlertRecord
    expect(a.direction).toBe('up')
    expect(Math.abs(Date.parse(a.started_at) - (T0 + 200 * M))).toBeLessThanOrEqual(2 * M)
    expect(Date.parse(a.detected_at)).toBeGreaterThan(T0 + 200 * M)
    expect(Date.parse(a.detected_at)).toBeLessThanOrEqual(T0 + 215 * M)
    expect(a.deployment_ids[0]).toBe('v2')
    expect(a.change_pct).toBeGreaterThan(35)
    expect(a.change_pct).toBeLessThan(65)
    expect(a.drivers.primary).toBe('input_tokens_per_request')
    expect(a.monthly_impact_usd).toBeGreaterThan(0)
  })

  it('a one-window spike (10x cost) never pages', () => {
    const windows = series([{ windows: 200, n: 200 }, { windows: 1, n: 200, inMult: 10 }, { windows: 100, n: 200 }])
    expect(run(windows).filter((a) => a.status === 'firing')).toEqual([])
  })

  it('a 15% step (below the 20% threshold) does not page', () => {
    // input is ~71% of the cost here: +21% input tokens = +15% cost per request
    const windows = series([{ windows: 200, n: 200 }, { windows: 300, n: 200, inMult: 1.21, deploy: 'v2' }])
    expect(seriesCpr(run(windows))).toEqual([])
  })

  it('a quiet series (3 requests a minute) pages a doubling once the requests since the change are conclusive', () => {
    const windows = series([{ windows: 400, n: 3 }, { windows: 200, n: 3, inMult: 3, deploy: 'v2' }])
    const alerts = seriesCpr(run(windows)).filter((a) => a.status === 'firing')
    expect(alerts).toHaveLength(1)
    const a = alerts[0] as AlertRecord
    expect(Math.abs(Date.parse(a.started_at) - (T0 + 400 * M))).toBeLessThanOrEqual(5 * M)
    expect(Date.parse(a.detected_at)).toBeLessThanOrEqual(T0 + 420 * M)
    expect(a.deployment_ids[0]).toBe('v2')
  })

  it('12% steps page rarely (at most 1 in 3)', () => {
    // input is ~71% of the cost here: +17% input tokens = +12% cost per request
    let paged = 0
    for (let seed = 1; seed <= 9; seed++) {
      const windows = series([{ windows: 300, n: 30 }, { windows: 300, n: 30, inMult: 1.17, deploy: 'v2' }], seed)
      if (seriesCpr(run(windows)).some((a) => a.status === 'firing')) paged++
    }
    expect(paged).toBeLessThanOrEqual(3)
  })

  it('resolves after recovery, with the same alert_id', () => {
    const windows = series([
      { windows: 200, n: 200 },
      { windows: 60, n: 200, inMult: 1.6, deploy: 'v2' },
      { windows: 60, n: 200, deploy: 'v3' },
    ])
    const alerts = seriesCpr(run(windows))
    expect(alerts.map((a) => a.status)).toEqual(['firing', 'resolved'])
    expect(alerts[1]?.alert_id).toBe(alerts[0]?.alert_id)
    expect(Date.parse(alerts[1]?.detected_at ?? '')).toBeGreaterThan(T0 + 260 * M)
  })

  it('reports updated when the break grows materially, without a second page', () => {
    const windows = series([
      { windows: 200, n: 200 },
      { windows: 40, n: 200, inMult: 1.5, deploy: 'v2' },
      { windows: 40, n: 200, inMult: 2.5, deploy: 'v3' },
    ])
    const statuses = seriesCpr(run(windows)).map((a) => a.status)
    expect(statuses[0]).toBe('firing')
    expect(statuses).toContain('updated')
    expect(statuses.filter((s) => s === 'firing')).toHaveLength(1)
  })
})

describe('detector core: endpoints across models and weekly shape', () => {
  it('a release moving an endpoint to a pricier model pages the endpoint with the model mix as driver and the release first', () => {
    const before = series([{ windows: 300, n: 30, deploy: 'v1' }])
    // from window 300 on the release v2 sends the same requests to gpt-4o (about 16x the price)
    const after = series([{ windows: 300, n: 30 }, { windows: 40, n: 30, deploy: 'v2' }], 2)
      .slice(300)
      .map((w) => ({ ...w, model: 'gpt-4o', cost_usd: w.cost_usd * 16, cost_sq_sum: w.cost_sq_sum * 256 }))
    const alerts = run([...before, ...after]).filter((a) => a.status === 'firing' && a.direction === 'up')
    const endpointPage = alerts.find((a) => a.endpoint === 'POST /v1/chat' && a.model === null)
    expect(endpointPage).toBeDefined()
    const a = endpointPage as AlertRecord
    expect(a.signal).toBe('cost_per_request')
    expect(a.drivers.primary).toBe('model_mix')
    expect(a.deployment_ids[0]).toBe('v2')
    expect(Math.abs(Date.parse(a.started_at) - (T0 + 300 * M))).toBeLessThanOrEqual(2 * M)
    expect(Date.parse(a.detected_at)).toBeLessThanOrEqual(T0 + 310 * M)
    // the model swap is the endpoint's page: no team page claims it
    expect(alerts.filter((x) => x.endpoint === null)).toEqual([])
  })

  it('traffic moving back from a sibling model (a swap undone by the next release) does not page the series it returns to', () => {
    // 34 h on gpt-4o-mini (a day of profile), 8 h on gpt-4o (mini goes quiet and its burn
    // baseline follows), then the next release sends the same traffic back to mini
    const swapAt = 34 * 60
    const backAt = swapAt + 8 * 60
    const all = series([{ windows: swapAt, n: 30, deploy: 'v1' }, { windows: backAt - swapAt, n: 30, deploy: 'v2' }, { windows: 6 * 60, n: 30, deploy: 'v3' }], 3)
    const windows = all.map((w, i) => (i >= swapAt && i < backAt ? { ...w, model: 'gpt-4o', cost_usd: w.cost_usd * 16, cost_sq_sum: w.cost_sq_sum * 256 } : w))
    const alerts = run(windows).filter((a) => a.status === 'firing')
    // the mini series' burn rate returns to what it was before the swap: no series burn page
    expect(alerts.filter((a) => a.model === 'gpt-4o-mini' && a.signal === 'burn_rate' && a.direction === 'up')).toEqual([])
    // the swap itself is still the endpoint's page
    expect(alerts.some((a) => a.model === null && a.endpoint === 'POST /v1/chat' && a.drivers.primary === 'model_mix' && a.direction === 'up')).toBe(true)
  })

  it('a series whose traffic triples while its endpoint keeps the same model mix still pages burn rate', () => {
    const windows = series([{ windows: 34 * 60, n: 30 }, { windows: 3 * 60, n: 90 }], 4)
    const pages = run(windows).filter((a) => a.status === 'firing' && a.direction === 'up' && a.signal === 'burn_rate' && a.model === 'gpt-4o-mini')
    expect(pages).toHaveLength(1)
    expect(Math.abs(Date.parse((pages[0] as AlertRecord).started_at) - (T0 + 34 * 60 * M))).toBeLessThanOrEqual(5 * M)
  })

  it('a quiet weekend followed by a normal Monday does not page burn rate', () => {
    // two weeks from Monday 2026-01-05: weekdays peak at 60 requests a minute, weekends at 12
    const rng = new Rng(7)
    const windows: WindowRecord[] = []
    for (let m = 0; m < 15 * 24 * 60; m++) {
      const t = T0 + m * M
      const day = Math.floor(m / 1440) % 7 // 0 = Monday
      const hour = (m % 1440) / 60
      const rate = (day >= 5 ? 12 : 60) * (1 + 0.6 * Math.cos((2 * Math.PI * (hour - 15)) / 24))
      const n = rng.poisson(rate)
      if (n === 0) continue
      let i = 0
      let c = 0
      let q = 0
      for (let r = 0; r < n; r++) {
        const it = Math.max(10, Math.round(1500 * (1 + 0.5 * rng.normal())))
        const cost = it * PIN + 150 * POUT
        i += it
        c += cost
        q += cost * cost
      }
      windows.push(makeWindow({ team: 'search', endpoint: 'POST /v1/chat', start: t, windowMs: M, requests: n, input: i, output: 150 * n, cost: c, costSq: q, deployment: 'v1' }))
    }
    const pages = run(windows).filter((a) => a.status === 'firing' && a.direction === 'up' && a.signal !== 'budget_burn')
    expect(pages).toEqual([])
  })
})

describe('detector core: delivery and determinism', () => {
  const windows = series([{ windows: 200, n: 200 }, { windows: 60, n: 200, inMult: 1.6, deploy: 'v2' }])

  it('ignores redelivered and older windows', () => {
    const d = createDetectorCore(defaultDetectorConfig)
    const once: AlertRecord[] = []
    for (const w of windows) {
      once.push(...d.onWindow(w))
      expect(d.onWindow(w)).toEqual([])
      expect(d.onWindow({ ...w, cost_usd: w.cost_usd * 100 })).toEqual([])
    }
    once.push(...d.flush())
    expect(once).toEqual(run(windows))
    expect(seriesCpr(once)).toHaveLength(1)
  })

  it('alert ids are deterministic across restarts (replay from history)', () => {
    const a = run(windows).map((x) => x.alert_id)
    expect(a.length).toBeGreaterThan(0)
    // a restarted detector rebuilds from the history it can read (26 h of cost_windows), which
    // does not reach back to the series' first window: a fresh core fed a later start must give
    // the same break the same id, or the notifier would page it again
    const restarted = run(windows.slice(40)).map((x) => x.alert_id)
    expect(restarted.length).toBeGreaterThan(0)
    expect(new Set(restarted)).toEqual(new Set(a))
    // a different series breaking at the same time gets a different id
    const other = run(series([{ windows: 200, n: 200 }, { windows: 60, n: 200, inMult: 1.6, deploy: 'v2' }], 1, 'POST /v1/other'))
    expect(other.map((x) => x.alert_id)).not.toContain(a[0])
  })
})

describe('detector core: budgets', () => {
  it('a team spending > 14.4x its even rate for an hour gets a critical budget_burn page', () => {
    // 200 requests/min at ~$0.0003 = ~$3.6/h; a $100/month budget spends evenly at $0.137/h (26x).
    // A series counts in its team's rollup from TEAM_MAX_SKEW_WINDOWS after its first window.
    const join = T0 + TEAM_MAX_SKEW_WINDOWS * M
    const config: DetectorConfig = { ...defaultDetectorConfig, teams: [{ name: 'search', monthlyBudgetUsd: 100 }] }
    const alerts = run(series([{ windows: TEAM_MAX_SKEW_WINDOWS + 90, n: 200 }]), config).filter((a) => a.signal === 'budget_burn')
    expect(alerts[0]?.status).toBe('firing')
    expect(alerts[0]?.severity).toBe('critical')
    expect(alerts[0]?.endpoint).toBeNull()
    expect(Date.parse(alerts[0]?.started_at ?? '')).toBeGreaterThanOrEqual(join)
    const detected = Date.parse(alerts[0]?.detected_at ?? '')
    expect(detected).toBeGreaterThan(join + 30 * M)
    expect(detected).toBeLessThanOrEqual(join + 61 * M)
    expect(alerts.filter((a) => a.status === 'firing')).toHaveLength(1)
  })

  it('a generous budget never pages', () => {
    const config: DetectorConfig = { ...defaultDetectorConfig, teams: [{ name: 'search', monthlyBudgetUsd: 1e6 }] }
    expect(run(series([{ windows: 400, n: 200 }]), config).filter((a) => a.signal === 'budget_burn')).toEqual([])
  })
})

describe('detector core: bounded state', () => {
  it('a series silent for 8 days of event time leaves, with its endpoint rollup; a live one stays', () => {
    const d = createDetectorCore(defaultDetectorConfig)
    const gone = series([{ windows: 30, n: 5 }], 3, 'POST /v1/retired')
    for (const w of gone) d.onWindow(w)
    expect(d.size()).toMatchObject({ series: 1, endpoints: 1, teams: 1 })
    // another series of the same team carries on for 8 days and an hour, one window every 5 minutes
    const start = T0 + 30 * M
    for (let t = start; t <= start + (8 * 24 + 1) * 60 * M; t += 5 * M) {
      d.onWindow(makeWindow({ team: 'search', endpoint: 'POST /v1/live', start: t, windowMs: M, requests: 10, input: 15_000, output: 1_500, cost: 0.003, costSq: 1e-6, deployment: 'v1' }))
      if (t === start + 7 * 24 * 60 * M) expect(d.size()).toMatchObject({ series: 2, endpoints: 2 })
    }
    expect(d.size()).toEqual({ series: 1, endpoints: 1, teams: 1 })
    // the retired name comes back: a fresh series, nothing thrown
    d.onWindow(makeWindow({ team: 'search', endpoint: 'POST /v1/retired', start: start + (8 * 24 + 2) * 60 * M, windowMs: M, requests: 5, input: 7_500, output: 750, cost: 0.0015, costSq: 5e-7, deployment: 'v1' }))
    expect(d.size()).toEqual({ series: 2, endpoints: 2, teams: 1 })
  })
})
