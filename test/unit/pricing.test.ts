import { describe, expect, it } from 'vitest'
import { createPricer, catalogRates } from '../../services/aggregator/pricing.ts'
import { ConfigFileSchema } from '../../shared/config.ts'
import type { UsageEvent } from '../../schemas/usage-event.ts'

const e = (over: Partial<UsageEvent>): UsageEvent => ({ event_id: 'e', timestamp: '2026-11-22T10:00:00Z', team: 't', endpoint: 'x', model: 'gpt-4o-mini', input_tokens: 1_000_000, output_tokens: 1_000_000, ...over })

describe('pricing', () => {
  const file = ConfigFileSchema.parse({ prices: [{ model: 'my-finetune-7b', input: 0.2, output: 0.6 }], gpu_hour_usd: 2.5 })
  const pricer = createPricer(file)

  it('uses cost_usd when the event carries it', () => {
    expect(pricer.price(e({ cost_usd: 0.42 }))).toMatchObject({ cost: 0.42, source: 'reported' })
  })
  it('splits the cost by token component: uncached input, cache read, cache write, output (they add up to the cost)', () => {
    const r = catalogRates('gpt-4o-mini')!
    const p = pricer.price(e({ input_tokens: 1_000_000, cache_read_tokens: 300_000, cache_write_tokens: 100_000, output_tokens: 200_000 }))
    expect(p.input).toBeCloseTo(600_000 * r.input, 12)
    expect(p.cacheRead).toBeCloseTo(300_000 * r.cacheRead, 12)
    expect(p.cacheWrite).toBeCloseTo(100_000 * r.cacheWrite, 12)
    expect(p.output).toBeCloseTo(200_000 * r.output, 12)
    expect(p.input + p.cacheRead + p.cacheWrite + p.output).toBeCloseTo(p.cost, 12)
    // batch: every component at the discount
    const b = pricer.price(e({ batch: true }))
    expect(b.input + b.output).toBeCloseTo(b.cost, 12)
    expect(b.output).toBeCloseTo(0.3, 9)
    // a reported cost is split at the catalog's ratios for the event's tokens
    const rep = pricer.price(e({ cost_usd: 1.5 }))
    expect(rep.cost).toBe(1.5)
    expect(rep.input).toBeCloseTo(1.5 * (0.15 / 0.75), 9)
    expect(rep.output).toBeCloseTo(1.5 * (0.6 / 0.75), 9)
    // no split without per-token rates: GPU-priced, unpriced, a reported cost of an unknown model
    for (const x of [e({ model: 'in-house-llm', gpu_seconds: 3600 }), e({ model: 'in-house-llm' }), e({ model: 'in-house-llm', cost_usd: 0.3 })]) {
      const q = pricer.price(x)
      expect([q.input, q.cacheRead, q.cacheWrite, q.output]).toEqual([0, 0, 0, 0])
    }
  })
  it('prices from the @pydantic/genai-prices catalog, cache reads at their own rate, batch at half', () => {
    const r = catalogRates('gpt-4o-mini')!
    expect(r.input * 1e6).toBeCloseTo(0.15, 6)
    expect(r.output * 1e6).toBeCloseTo(0.6, 6)
    expect(pricer.price(e({}))).toMatchObject({ cost: expect.closeTo(0.75, 9), source: 'catalog' })
    expect(pricer.price(e({ output_tokens: 0, cache_read_tokens: 500_000 })).cost).toBeCloseTo(0.5 * 0.15 + 0.5 * r.cacheRead * 1e6, 9)
    expect(pricer.price(e({ batch: true })).cost).toBeCloseTo(0.375, 9)
  })
  it('lets a config override win over the catalog', () => {
    expect(pricer.price(e({ model: 'my-finetune-7b' }))).toMatchObject({ cost: expect.closeTo(0.8, 9), source: 'override', input: expect.closeTo(0.2, 9), output: expect.closeTo(0.6, 9) })
  })
  it('prices self-hosted GPU seconds, and keeps an unknown model with cost 0 flagged unpriced', () => {
    expect(pricer.price(e({ model: 'in-house-llm', gpu_seconds: 3600 }))).toMatchObject({ cost: 2.5, source: 'gpu' })
    expect(pricer.price(e({ model: 'in-house-llm' }))).toMatchObject({ cost: 0, source: 'unpriced' })
  })
})
