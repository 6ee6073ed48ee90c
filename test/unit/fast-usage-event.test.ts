/**
 * The fast path must never accept what the zod schema rejects, and must agree with it on
 * valid events. Checked on valid events and on thousands of single-field mutations.
 */
import { describe, expect, it } from 'vitest'
import { fastUsageEvent, isoTimestampMs } from '../../schemas/fast-usage-event.ts'
import { UsageEventLenient, UsageEventStrict } from '../../schemas/usage-event.ts'
import { mulberry32 } from '../../services/demo/traffic.ts'

const base = () => ({
  event_id: 'e-1',
  timestamp: '2026-11-22T10:00:00.123Z',
  team: 'search',
  endpoint: 'POST /v1/summarize',
  model: 'gpt-4o-mini',
  provider: 'openai',
  service: 'api',
  deployment_id: 'd-1',
  environment: 'staging',
  input_tokens: 1000,
  output_tokens: 200,
  cache_read_tokens: 100,
  cache_write_tokens: 0,
  reasoning_tokens: 150,
  batch: false,
  cost_usd: 0.001,
  gpu_seconds: 0.5,
  latency_ms: 120,
  status: 'ok',
  attributes: { tier: 'pro' },
})

const odd: unknown[] = [undefined, null, '', 'x', 'x'.repeat(65), 'x'.repeat(129), 'x'.repeat(257), 201, 1001, 'x'.repeat(1025), -1, 0, 1.5, 2 ** 60, 1e13, Number.NaN, Infinity, true, [], {}, { a: 1 }, '12', '2026-02-30T00:00:00Z', '2026-11-22T24:00:00Z', '2026-11-22T10:00:00', '2026-11-22T10:00:00+25:00', '2026-11-22 10:00:00Z', new Date(Date.now() + 3_600_000).toISOString(), 'error', 'failed', Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))]

describe('fast usage event path', () => {
  it('accepts valid events exactly as zod parses them', () => {
    const now = Date.now()
    const e = base()
    const fast = fastUsageEvent(e, true, now)
    expect(fast?.event).toEqual(UsageEventStrict.parse(e))
    expect(fast?.ts).toBe(Date.parse(e.timestamp))
    const withUnknown = { ...e, colour: 'red' }
    expect(fastUsageEvent(withUnknown, true, now)).toBeNull()
    expect(fastUsageEvent(withUnknown, false, now)?.event).toEqual(UsageEventLenient.parse(withUnknown))
  })

  it('is never more lenient than zod on mutated events', () => {
    const now = Date.now()
    const random = mulberry32(7)
    const keys = Object.keys(base())
    let fastAccepted = 0
    let checked = 0
    for (const key of [...keys, 'colour']) {
      for (const v of odd) {
        for (const strict of [true, false]) {
          const e: Record<string, unknown> = base()
          if (v === undefined) delete e[key]
          else e[key] = v
          // and a second random mutation
          const k2 = keys[Math.floor(random() * keys.length)]!
          if (random() < 0.3) e[k2] = odd[Math.floor(random() * odd.length)]
          const fast = fastUsageEvent(e, strict, now)
          const zod = (strict ? UsageEventStrict : UsageEventLenient).safeParse(e)
          checked++
          if (fast) {
            fastAccepted++
            expect(zod.success, `${key}=${JSON.stringify(v)} strict=${strict}`).toBe(true)
            expect(fast.event).toEqual(zod.data)
          }
        }
      }
    }
    expect(checked).toBeGreaterThan(1000)
    expect(fastAccepted).toBeGreaterThan(50) // the fast path is actually exercised
  })

  it('reads timestamps as Date.parse does, and refuses every one zod refuses', () => {
    const random = mulberry32(11)
    const pick = <T,>(xs: readonly T[]) => xs[Math.floor(random() * xs.length)]!
    const two = (n: number) => String(n).padStart(2, '0')
    const fractions = ['', '.', '.1', '.12', '.123', '.1234', '.999999999', '.0', '.a', '.05']
    const zones = ['Z', 'z', '+00:00', '-00:00', '+05:30', '-11:45', '+23:59', '+24:00', '+05:60', '+0530', '+05', '', 'ZZ', ' Z', '+05:30Z']
    let accepted = 0
    for (let i = 0; i < 20_000; i++) {
      const y = pick([1999, 2000, 2024, 2026, 2100, 2400, 1900, 99, 9999])
      const mo = pick([0, 1, 2, 3, 6, 9, 11, 12, 13])
      const d = pick([0, 1, 15, 28, 29, 30, 31, 32])
      const h = pick([0, 9, 23, 24])
      const mi = pick([0, 30, 59, 60])
      const se = pick([0, 59, 60])
      let ts = `${String(y).padStart(4, '0')}-${two(mo)}-${two(d)}T${two(h)}:${two(mi)}:${two(se)}${pick(fractions)}${pick(zones)}`
      if (random() < 0.05) ts = ts.replace('T', pick([' ', 't', 'TT']))
      if (random() < 0.05) ts = ts.slice(0, Math.floor(random() * ts.length))
      const ms = isoTimestampMs(ts)
      const zod = UsageEventLenient.shape.timestamp.safeParse(ts)
      if (!Number.isNaN(ms)) {
        accepted++
        expect(zod.success, ts).toBe(true)
        expect(ms, ts).toBe(Date.parse(ts))
      }
    }
    expect(accepted).toBeGreaterThan(1000)
  })
})
