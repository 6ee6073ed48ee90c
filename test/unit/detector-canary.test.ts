import { describe, expect, it } from 'vitest'
import { AlertRecord } from '../../schemas/alert.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import { createDetectorCore, defaultDetectorConfig } from '../../services/detector/core/index.ts'
import { Rng } from '../../eval/rng.ts'

const M = 60_000
const T0 = Date.UTC(2026, 0, 5, 0, 0)
const PIN = 0.15e-6
const POUT = 0.6e-6

/**
 * One series at n requests a minute: `v1` for `before` windows, then a canary `v2` taking `share`
 * of the requests with input tokens × mult for `canary` windows, then v2 at full rollout for
 * `after` windows. Windows carry per-deployment cost and squared cost (withCosts) or not.
 */
function canarySeries(o: { before: number; canary: number; after: number; n: number; share: number; mult: number; seed?: number; withCosts?: boolean }): WindowRecord[] {
  const rng = new Rng(o.seed ?? 1)
  const out: WindowRecord[] = []
  const total = o.before + o.canary + o.after
  for (let w = 0; w < total; w++) {
    const t = T0 + w * M
    const deps: Record<string, number> = {}
    const depC: Record<string, number> = {}
    const depQ: Record<string, number> = {}
    let i = 0
    let out_ = 0
    let c = 0
    let q = 0
    for (let r = 0; r < o.n; r++) {
      const id = w < o.before ? 'v1' : w < o.before + o.canary ? (rng.next() < o.share ? 'v2' : 'v1') : 'v2'
      const m = id === 'v2' ? o.mult : 1
      const it = Math.max(10, Math.round(1500 * m * (1 + 0.5 * rng.normal())))
      const ot = Math.max(1, Math.round(150 * (1 + 0.5 * rng.normal())))
      const cost = it * PIN + ot * POUT
      i += it
      out_ += ot
      c += cost
      q += cost * cost
      deps[id] = (deps[id] ?? 0) + 1
      depC[id] = (depC[id] ?? 0) + cost
      depQ[id] = (depQ[id] ?? 0) + cost * cost
    }
    out.push({
      team: 'search',
      endpoint: 'POST /v1/chat',
      model: 'gpt-4o-mini',
      window_start: new Date(t).toISOString(),
      window_end: new Date(t + M).toISOString(),
      requests: o.n,
      errors: 0,
      input_tokens: i,
      output_tokens: out_,
      cache_read_tokens: 0,
      cache_write_tokens: 0,
      cost_usd: c,
      cost_sq_sum: q,
      unpriced_requests: 0,
      late_events: 0,
      deployments: deps,
      ...(o.withCosts === false ? {} : { deployment_costs: depC, deployment_cost_sq: depQ }),
    })
  }
  return out
}

function pages(windows: WindowRecord[]): AlertRecord[] {
  const d = createDetectorCore(defaultDetectorConfig)
  const out: AlertRecord[] = []
  for (const w of windows) out.push(...d.onWindow(w))
  out.push(...d.flush())
  return out.filter((a) => a.status === 'firing' && a.endpoint !== null && a.signal === 'cost_per_request')
}

const BEFORE = 300
const CANARY = 90

describe('detector core: canary comparison', () => {
  it('a canary at 10% of traffic, +45% per request, pages within minutes naming it, before the rollout completes, once', () => {
    const alerts = pages(canarySeries({ before: BEFORE, canary: CANARY, after: 120, n: 100, share: 0.1, mult: 1.6 }))
    expect(alerts).toHaveLength(1)
    const a = alerts[0] as AlertRecord
    expect(a.direction).toBe('up')
    expect(a.deployment_ids[0]).toBe('v2')
    expect(Math.abs(Date.parse(a.started_at) - (T0 + BEFORE * M))).toBeLessThanOrEqual(M)
    expect(Date.parse(a.detected_at)).toBeLessThanOrEqual(T0 + (BEFORE + 20) * M)
    expect(Date.parse(a.detected_at)).toBeLessThan(T0 + (BEFORE + CANARY) * M)
    // change_pct: the canary against the old ID per request (+45% true)
    expect(a.change_pct).toBeGreaterThan(30)
    expect(a.change_pct).toBeLessThan(65)
    // the canary's details, for "caught in canary: v2, 10% of traffic, +45% per request"
    expect(a.canary).toBeDefined()
    expect(a.canary!.deployment_id).toBe('v2')
    expect(a.canary!.compared_with).toBe('v1')
    expect(a.canary!.traffic_pct).toBeGreaterThan(5)
    expect(a.canary!.traffic_pct).toBeLessThan(15)
    expect(a.canary!.change_pct).toBe(a.change_pct)
    expect(AlertRecord.parse(a)).toEqual(a)
  })

  it('without per-deployment costs (windows rebuilt from history) the break waits for the rollout', () => {
    const alerts = pages(canarySeries({ before: BEFORE, canary: CANARY, after: 120, n: 100, share: 0.1, mult: 1.6, withCosts: false }))
    // paged by the series' own signal: no canary details
    for (const a of alerts) expect(a.canary).toBeUndefined()
    for (const a of alerts) expect(Date.parse(a.detected_at)).toBeGreaterThanOrEqual(T0 + (BEFORE + CANARY) * M)
  })

  it('a canary at +10% per request never pages', () => {
    for (let seed = 1; seed <= 5; seed++) {
      expect(pages(canarySeries({ before: BEFORE, canary: 240, after: 0, n: 200, share: 0.2, mult: 1.135, seed }))).toEqual([])
    }
  })

  it('a new ID of equal cost never pages', () => {
    for (let seed = 1; seed <= 5; seed++) {
      expect(pages(canarySeries({ before: BEFORE, canary: 240, after: 120, n: 200, share: 0.2, mult: 1, seed }))).toEqual([])
    }
  })
})
