/**
 * Prices a usage event in USD. Order: the event's own `cost_usd`; a config override for the
 * model; the maintained catalog of @pydantic/genai-prices (bundled offline); GPU seconds at the
 * configured $/GPU-hour; otherwise cost 0 flagged `unpriced` (kept and counted, never dropped).
 *
 * calcPrice costs ~20 µs a call, too slow per event, so per-token rates are derived once per
 * (provider, model) by probing the catalog with a request of typical size and cached. Tiered
 * catalog prices are therefore priced at the tier of a ~10k-token request, and a catalog price
 * change takes effect on restart.
 */
import { calcPrice } from '@pydantic/genai-prices'
import type { UsageEvent } from '../../schemas/usage-event.ts'
import type { ConfigFile } from '../../shared/config.ts'

export type CostSource = 'reported' | 'override' | 'catalog' | 'gpu' | 'unpriced'

export interface Rates {
  /** USD per token */
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
}

export interface Priced {
  cost: number
  source: CostSource
  /**
   * `cost` by token component (USD): uncached input, cache reads, cache writes, output (reasoning
   * included). They add up to `cost` when the event is priced per token (an override, the
   * catalog, or a reported cost split at the catalog's ratios for its tokens); all 0 for GPU-priced
   * and unpriced events and for a reported cost the catalog cannot split.
   */
  input: number
  cacheRead: number
  cacheWrite: number
  output: number
}

/** Batch APIs are billed at half price by the major providers. */
export const BATCH_DISCOUNT = 0.5
const PROBE = 10_000

export function catalogRates(model: string, provider?: string): Rates | null {
  const opts = provider ? { providerId: provider } : undefined
  const price = (u: Record<string, number>) => {
    try {
      return calcPrice(u, model, opts)?.total_price ?? null
    } catch {
      return null
    }
  }
  const input = price({ input_tokens: PROBE })
  if (input === null) return provider ? catalogRates(model) : null
  const output = price({ output_tokens: PROBE }) ?? 0
  const cacheRead = price({ input_tokens: PROBE, cache_read_tokens: PROBE }) ?? input
  const cacheWrite = price({ input_tokens: PROBE, cache_write_tokens: PROBE }) ?? input
  return { input: input / PROBE, output: output / PROBE, cacheRead: cacheRead / PROBE, cacheWrite: cacheWrite / PROBE }
}

export interface Pricer {
  price(e: UsageEvent): Priced
  rates(model: string, provider?: string): Rates | null
}

/** Most (provider, model) rates kept; past it the cache starts afresh (a catalog lookup is cheap, memory is not). */
export const PRICE_CACHE_LIMIT = 4096

export function createPricer(file: Pick<ConfigFile, 'prices' | 'gpu_hour_usd'>, catalog: (model: string, provider?: string) => Rates | null = catalogRates): Pricer {
  // provider → model → rates: nested maps, no per-event key string on the hot path
  const cache = new Map<string, Map<string, Rates | null>>()
  const overrides = new Map<string, Map<string, Rates>>()
  for (const p of file.prices) {
    const r: Rates = { input: p.input / 1e6, output: p.output / 1e6, cacheRead: (p.cache_read ?? p.input) / 1e6, cacheWrite: (p.cache_write ?? p.input) / 1e6 }
    const byProvider = overrides.get(p.provider ?? '') ?? new Map<string, Rates>()
    overrides.set(p.provider ?? '', byProvider.set(p.model, r))
  }
  // bounded: every distinct (provider, model) name an outside producer sends would otherwise stay
  let cached = 0
  const rates = (model: string, provider?: string): Rates | null => {
    let byModel = cache.get(provider ?? '')
    if (!byModel) cache.set(provider ?? '', (byModel = new Map()))
    let r = byModel.get(model)
    if (r === undefined) {
      if (cached >= PRICE_CACHE_LIMIT) {
        cache.clear()
        cache.set(provider ?? '', (byModel = new Map()))
        cached = 0
      }
      byModel.set(model, (r = catalog(model, provider)))
      cached++
    }
    return r
  }
  const override = (e: UsageEvent) => (e.provider ? overrides.get(e.provider)?.get(e.model) : undefined) ?? overrides.get('')?.get(e.model)

  return {
    rates,
    price(e: UsageEvent): Priced {
      const o = override(e)
      const r = o ?? rates(e.model, e.provider)
      if (r) {
        const cr = e.cache_read_tokens ?? 0
        const cw = e.cache_write_tokens ?? 0
        const plain = Math.max(0, e.input_tokens - cr - cw)
        let input = plain * r.input
        let cacheRead = cr * r.cacheRead
        let cacheWrite = cw * r.cacheWrite
        let output = e.output_tokens * r.output
        const atRates = input + cacheRead + cacheWrite + output
        // a reported cost wins; it is split at the rates' ratios for this event's tokens (none when
        // the tokens cost nothing at those rates: nothing to split by)
        const f = e.cost_usd !== undefined ? (atRates > 0 ? e.cost_usd / atRates : 0) : e.batch ? BATCH_DISCOUNT : 1
        if (f !== 1) {
          input *= f
          cacheRead *= f
          cacheWrite *= f
          output *= f
        }
        if (e.cost_usd !== undefined) return { cost: e.cost_usd, source: 'reported', input, cacheRead, cacheWrite, output }
        return { cost: input + cacheRead + cacheWrite + output, source: o ? 'override' : 'catalog', input, cacheRead, cacheWrite, output }
      }
      if (e.cost_usd !== undefined) return { cost: e.cost_usd, source: 'reported', input: 0, cacheRead: 0, cacheWrite: 0, output: 0 }
      if (e.gpu_seconds !== undefined && file.gpu_hour_usd > 0) return { cost: (e.gpu_seconds / 3600) * file.gpu_hour_usd, source: 'gpu', input: 0, cacheRead: 0, cacheWrite: 0, output: 0 }
      return { cost: 0, source: 'unpriced', input: 0, cacheRead: 0, cacheWrite: 0, output: 0 }
    },
  }
}
