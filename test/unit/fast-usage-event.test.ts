/**
 * The fast path must never accept what the zod schema rejects, and must agree with it on
 * valid events. Checked on valid events and on thousands of single-field mutations.
 */
import { describe, expect, it } from 'vitest'
import { fastUsageEvent } from '../../schemas/fast-usage-event.ts'
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
  input_tokens: 1000,
  output_tokens: 200,
  cache_read_tokens: 100,
  cache_write_tokens: 0,
  batch: false,
  cost_usd: 0.001,
  gpu_seconds: 0.5,
  latency_ms: 120,
  status: 'ok',
  attributes: { tier: 'pro' },
})

const odd: unknown[] = [undefined, null, '', 'x', 'x'.repeat(129), 'x'.repeat(257), 'x'.repeat(1025), -1, 0, 1.5, 2 ** 60, 1e13, Number.NaN, Infinity, true, [], {}, { a: 1 }, '12', '2026-02-30T00:00:00Z', '2026-11-22T24:00:00Z', '2026-11-22T10:00:00', '2026-11-22T10:00:00+25:00', '2026-11-22 10:00:00Z', new Date(Date.now() + 3_600_000).toISOString(), 'error', 'failed', Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']))]

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
})
