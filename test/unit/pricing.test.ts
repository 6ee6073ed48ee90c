import { describe, expect, it } from 'vitest'
import { createPricer, catalogRates } from '../../services/aggregator/pricing.ts'
import { ConfigFileSchema } from '../../shared/config.ts'
import type { UsageEvent } from '../../schemas/usage-event.ts'

const e = (over: Partial<UsageEvent>): UsageEvent => ({ event_id: 'e', timestamp: '2026-11-22T10:00:00Z', team: 't', endpoint: 'x', model: 'gpt-4o-mini', input_tokens: 1_000_000, output_tokens: 1_000_000, ...over })

describe('pricing', () => {
  const file = ConfigFileSchema.parse({ prices: [{ model: 'my-finetune-7b', input: 0.2, output: 0.6 }], gpu_hour_usd: 2.5 })
  const pricer = createPricer(file)

  it('uses cost_usd when the event carries it', () => {
    expect(pricer.price(e({ cost_usd: 0.42 }))).toEqual({ cost: 0.42, source: 'reported' })
  })
  it('prices from the @pydantic/genai-prices catalog, cache reads at their own rate, batch at half', () => {
    const r = catalogRates('gpt-4o-mini')!
    expect(r.input * 1e6).toBeCloseTo(0.15, 6)
    expect(r.output * 1e6).toBeCloseTo(0.6, 6)
    expect(pricer.price(e({}))).toEqual({ cost: expect.closeTo(0.75, 9), source: 'catalog' })
    expect(pricer.price(e({ output_tokens: 0, cache_read_tokens: 500_000 })).cost).toBeCloseTo(0.5 * 0.15 + 0.5 * r.cacheRead * 1e6, 9)
    expect(pricer.price(e({ batch: true })).cost).toBeCloseTo(0.375, 9)
  })
  it('lets a config override win over the catalog', () => {
    expect(pricer.price(e({ model: 'my-finetune-7b' }))).toEqual({ cost: expect.closeTo(0.8, 9), source: 'override' })
  })
  it('prices self-hosted GPU seconds, and keeps an unknown model with cost 0 flagged unpriced', () => {
    expect(pricer.price(e({ model: 'in-house-llm', gpu_seconds: 3600 }))).toEqual({ cost: 2.5, source: 'gpu' })
    expect(pricer.price(e({ model: 'in-house-llm' }))).toEqual({ cost: 0, source: 'unpriced' })
  })
})
