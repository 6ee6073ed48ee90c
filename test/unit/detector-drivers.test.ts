/**
 * Exact drivers (issue 11, build item 4): with the cost of each token component carried in the
 * windows, the change of cost per request is split exactly; without them (windows stored before
 * they existed) the catalog-rate / estimated-price path stays the fallback.
 */
import { describe, expect, it } from 'vitest'
import type { AlertRecord } from '../../schemas/alert.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import type { WindowTotals } from '../../services/detector/core/baseline.ts'
import { computeDrivers, hasComponents, retryVolumePp } from '../../services/detector/core/drivers.ts'
import { createDetectorCore, defaultDetectorConfig } from '../../services/detector/core/index.ts'
import { Rng } from '../../eval/rng.ts'

/** Totals of n requests, each with the given tokens at the given per-token prices. */
function totals(
  n: number,
  tok: { u: number; r?: number; w?: number; o: number },
  price: { u: number; r?: number; w?: number; o: number },
  errors = 0,
): Required<WindowTotals> {
  const r = tok.r ?? 0
  const w = tok.w ?? 0
  const cu = n * tok.u * price.u
  const cr = n * r * (price.r ?? 0)
  const cw = n * w * (price.w ?? 0)
  // failed calls produce no output
  const co = (n - errors) * tok.o * price.o
  const c = cu + cr + cw + co
  return { n, c, q: 0, i: n * (tok.u + r + w), o: (n - errors) * tok.o, k: n * r, e: errors, kw: n * w, cu, cr, cw, co, r: 0 }
}

const noComponents = (t: WindowTotals): WindowTotals => ({ n: t.n, c: t.c, q: t.q, i: t.i, o: t.o, k: t.k, e: t.e })
const sumPp = (d: AlertRecord['drivers']) => d.input_tokens_per_request + d.output_tokens_per_request + d.cache_reads + d.price + d.error_share
const P = { u: 1e-6, r: 0.1e-6, w: 1.25e-6, o: 4e-6 }
// deliberately wrong "estimated" prices: the exact split must not use them
const WRONG = { pu: 3e-6, po: 0.5e-6, pk: 2e-6 }

describe('exact drivers from component costs', () => {
  it('a price change with unchanged tokens is all price', () => {
    const base = totals(1000, { u: 800, r: 200, o: 100 }, P)
    const cur = totals(1000, { u: 800, r: 200, o: 100 }, { u: 1.5e-6, r: 0.15e-6, o: 6e-6 })
    const d = computeDrivers(base, cur, WRONG)
    expect(d.primary).toBe('price')
    expect(d.price).toBeCloseTo(50, 1)
    expect(Math.abs(d.input_tokens_per_request) + Math.abs(d.output_tokens_per_request) + Math.abs(d.cache_reads)).toBeLessThan(0.05)
  })

  it('a price change of one component alone, with more output tokens, is split between price and output exactly', () => {
    const base = totals(1000, { u: 1000, o: 100 }, P)
    const cur = totals(1000, { u: 1000, o: 150 }, { ...P, o: 8e-6 })
    const d = computeDrivers(base, cur, WRONG)
    const p0 = base.c / base.n
    // output at the old price: +50 tokens × 4e-6; price: 150 tokens × +4e-6
    expect(d.output_tokens_per_request).toBeCloseTo(((50 * 4e-6) / p0) * 100, 1)
    expect(d.price).toBeCloseTo(((150 * 4e-6) / p0) * 100, 1)
    expect(d.input_tokens_per_request).toBeCloseTo(0, 2)
    expect(sumPp(d)).toBeCloseTo((cur.c / base.c - 1) * 100, 1)
  })

  it('fewer cache reads (same input) is cache, never price', () => {
    const base = totals(1000, { u: 400, r: 600, o: 100 }, P)
    const cur = totals(1000, { u: 1000, r: 0, o: 100 }, P)
    const d = computeDrivers(base, cur, WRONG)
    expect(d.primary).toBe('cache_reads')
    expect(d.price).toBeCloseTo(0, 2)
    expect(d.input_tokens_per_request).toBeCloseTo(0, 2)
    expect(d.cache_reads).toBeCloseTo((cur.c / base.c - 1) * 100, 1)
  })

  it('more cache writes (priced above uncached input) are cache', () => {
    const base = totals(1000, { u: 1000, o: 50 }, P)
    const cur = totals(1000, { u: 200, w: 800, o: 50 }, P)
    const d = computeDrivers(base, cur, WRONG)
    expect(d.primary).toBe('cache_reads')
    expect(d.cache_reads).toBeGreaterThan(0)
    expect(d.price).toBeCloseTo(0, 2)
  })

  it('more output tokens per request is output; input per request is input', () => {
    const base = totals(500, { u: 1000, o: 100 }, P)
    expect(computeDrivers(base, totals(500, { u: 1000, o: 160 }, P), WRONG).primary).toBe('output_tokens_per_request')
    const d = computeDrivers(base, totals(500, { u: 1600, o: 100 }, P), WRONG)
    expect(d.primary).toBe('input_tokens_per_request')
    expect(d.input_tokens_per_request).toBeCloseTo((600e-6 / (base.c / base.n)) * 100, 1)
  })

  it('falls back to the given prices when either side lacks component costs (history stored before them)', () => {
    const base = totals(1000, { u: 800, r: 200, o: 100 }, P)
    const cur = totals(1000, { u: 800, r: 200, o: 100 }, { u: 1.5e-6, r: 0.15e-6, o: 6e-6 })
    expect(hasComponents(base)).toBe(true)
    expect(hasComponents(noComponents(base))).toBe(false)
    // components that do not add up to the cost (part of it unsplit) are not used either
    expect(hasComponents({ ...base, co: base.co / 2 })).toBe(false)
    const exact = computeDrivers(base, cur, WRONG)
    const fallback = computeDrivers(noComponents(base), cur, WRONG)
    expect(fallback).toEqual(computeDrivers(noComponents(base), noComponents(cur), WRONG))
    expect(fallback).not.toEqual(exact)
  })

  it('burn rate: calls added by a higher error share (retries) are error share, not volume', () => {
    const base = totals(100, { u: 1000, o: 100 }, P, 1)
    // half the calls fail and are retried: twice the calls, the same successful ones
    const cur = totals(198, { u: 1000, o: 100 }, P, 99)
    const vol = (198 / 100 - 1) * 100
    expect(retryVolumePp(base, cur, vol)).toBeCloseTo(vol, 0)
    const d = computeDrivers(base, cur, WRONG, vol)
    expect(d.primary).toBe('error_share')
    expect(d.error_share).toBeGreaterThan(50)
    // organic growth with the error share unchanged stays volume
    const grown = totals(200, { u: 1000, o: 100 }, P, 2)
    expect(computeDrivers(base, grown, WRONG, 100).primary).toBe('volume')
    expect(retryVolumePp(base, grown, 100)).toBe(0)
  })

  it('burn rate: counted retries (migration 043) beyond the failed calls are error share too', () => {
    const base = { ...totals(100, { u: 1000, o: 100 }, P, 0), r: 0 }
    // timeouts retried by the client, the retries succeed: twice the calls, errors barely moved
    const cur = { ...totals(200, { u: 1000, o: 100 }, P, 2), r: 100 }
    const vol = 100
    expect(retryVolumePp(base, cur, vol)).toBeCloseTo(vol, 0)
    expect(computeDrivers(base, cur, WRONG, vol).primary).toBe('error_share')
    // the same windows without retries counted: the 1% error share explains only its own calls
    expect(retryVolumePp(base, { ...cur, r: 0 }, vol)).toBeLessThan(2)
  })
})

describe('exact drivers through the detector core', () => {
  // a model the price catalog does not know, whose output costs what its input costs, and whose
  // calls all have the same shape (tokens per request vary, their input/output ratio per window
  // barely does): the regression cannot tell the prices apart, and the fallback's typical ratios
  // (output 4× input) misprice it
  const PIN = 1e-6
  const POUT = 1e-6
  const M = 60_000
  const T0 = Date.UTC(2026, 0, 5)

  function windows(withComponents: boolean): WindowRecord[] {
    const rng = new Rng(7)
    const out: WindowRecord[] = []
    for (let w = 0; w < 260; w++) {
      const after = w >= 200
      let i = 0
      let o = 0
      let c = 0
      let q = 0
      let ci = 0
      let co = 0
      const n = 100
      for (let r = 0; r < n; r++) {
        const size = Math.max(0.2, 1 + 0.3 * rng.normal())
        const it = Math.round(1000 * (after ? 1.6 : 1) * size)
        const ot = Math.round(1000 * size)
        const cost = it * PIN + ot * POUT
        i += it
        o += ot
        c += cost
        q += cost * cost
        ci += it * PIN
        co += ot * POUT
      }
      out.push({
        team: 'search',
        endpoint: 'POST /v1/embed',
        model: 'acme-llm-7b',
        window_start: new Date(T0 + w * M).toISOString(),
        window_end: new Date(T0 + (w + 1) * M).toISOString(),
        requests: n,
        errors: 0,
        input_tokens: i,
        output_tokens: o,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_usd: c,
        cost_sq_sum: q,
        unpriced_requests: 0,
        late_events: 0,
        deployments: { [after ? 'v2' : 'v1']: n },
        ...(withComponents ? { cost_input_usd: ci, cost_cache_read_usd: 0, cost_cache_write_usd: 0, cost_output_usd: co } : {}),
      })
    }
    return out
  }

  const firing = (ws: WindowRecord[]) => {
    const d = createDetectorCore(defaultDetectorConfig)
    const out: AlertRecord[] = []
    for (const w of ws) out.push(...d.onWindow(w))
    out.push(...d.flush())
    return out.filter((a) => a.status === 'firing' && a.model !== null && a.signal === 'cost_per_request')
  }

  it('an input step of an uncatalogued model is named input tokens, with no price part, when the windows carry component costs', () => {
    const [a] = firing(windows(true))
    expect(a).toBeDefined()
    expect(a!.drivers.primary).toBe('input_tokens_per_request')
    expect(Math.abs(a!.drivers.price)).toBeLessThan(1)
    expect(a!.drivers.input_tokens_per_request).toBeCloseTo(a!.change_pct, -1)
  })

  it('the same windows without component costs are split at estimated prices (the fallback), which blames price', () => {
    const [exact] = firing(windows(true))
    const [fallback] = firing(windows(false))
    expect(fallback).toBeDefined()
    expect(fallback!.change_pct).toBe(exact!.change_pct)
    expect(fallback!.drivers.primary).toBe('price')
  })
})

describe('retry storms through the detector core', () => {
  const M = 60_000
  const T0 = Date.UTC(2026, 0, 5)
  const PIN = 0.6e-6
  const POUT = 0.4e-6

  /** A flat series; from `stormAt` on, half the calls fail (billing their input, no output) and each failure is retried. */
  function windows(stormAt: number, total: number, stormEnd = Infinity): WindowRecord[] {
    const rng = new Rng(11)
    const out: WindowRecord[] = []
    for (let w = 0; w < total; w++) {
      const storm = w >= stormAt && w < stormEnd
      let n = 0
      let e = 0
      let i = 0
      let o = 0
      let c = 0
      let q = 0
      let ci = 0
      let co = 0
      let ok = 0
      const work = rng.poisson(40)
      while (ok < work) {
        const fail = storm && rng.next() < 0.5
        const it = Math.max(10, Math.round(1000 * (1 + 0.3 * rng.normal())))
        const ot = fail ? 0 : Math.max(1, Math.round(1000 * (1 + 0.3 * rng.normal())))
        const cost = it * PIN + ot * POUT
        n++
        if (fail) e++
        else ok++
        i += it
        o += ot
        c += cost
        q += cost * cost
        ci += it * PIN
        co += ot * POUT
      }
      out.push({
        team: 'search',
        endpoint: 'POST /v1/answer',
        model: 'acme-llm-7b',
        window_start: new Date(T0 + w * M).toISOString(),
        window_end: new Date(T0 + (w + 1) * M).toISOString(),
        requests: n,
        errors: e,
        input_tokens: i,
        output_tokens: o,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        cost_usd: c,
        cost_sq_sum: q,
        unpriced_requests: 0,
        late_events: 0,
        deployments: { v1: n },
        cost_input_usd: ci,
        cost_cache_read_usd: 0,
        cost_cache_write_usd: 0,
        cost_output_usd: co,
      })
    }
    return out
  }

  it('pages the cost per successful call within minutes, errors/retries as the driver, though each call got cheaper', () => {
    const stormAt = 2 * 1440 + 600
    const d = createDetectorCore(defaultDetectorConfig)
    const alerts: AlertRecord[] = []
    for (const w of windows(stormAt, stormAt + 240)) alerts.push(...d.onWindow(w))
    alerts.push(...d.flush())
    const firing = alerts.filter((a) => a.status === 'firing' && a.model !== null)
    const page = firing.find((a) => a.signal === 'cost_per_request' && a.direction === 'up')
    expect(page, JSON.stringify(firing)).toBeDefined()
    expect(page!.drivers.primary).toBe('error_share')
    // half the calls fail and are retried: each successful call costs about 1.5 calls' input and one output
    expect(page!.change_pct).toBeGreaterThan(40)
    expect(Math.abs(Date.parse(page!.started_at) - (T0 + stormAt * M))).toBeLessThanOrEqual(3 * M)
    expect(Date.parse(page!.detected_at)).toBeLessThanOrEqual(T0 + (stormAt + 10) * M)
    // the cheaper calls are not reported as a saving
    expect(firing.filter((a) => a.signal === 'cost_per_request' && a.direction === 'down')).toEqual([])
  })

  it('a one-minute burst of failed calls does not page', () => {
    const stormAt = 2 * 1440 + 600
    const d = createDetectorCore(defaultDetectorConfig)
    const alerts: AlertRecord[] = []
    for (const w of windows(stormAt, stormAt + 240, stormAt + 1)) alerts.push(...d.onWindow(w))
    alerts.push(...d.flush())
    expect(alerts.filter((a) => a.status === 'firing' && a.direction === 'up')).toEqual([])
  })
})
