/**
 * Drivers: the change of cost per request split into input tokens per request, output tokens per
 * request, cache reads, error share and price, in percentage points of change_pct.
 *
 * Per-token prices: the model's catalog rates scaled to the baseline cost (catalogPrices) when
 * the catalog knows the model; otherwise estimated from the baseline windows: a no-intercept least-squares regression of window cost on (uncached input, output,
 * cache-read) tokens. When that regression is ill-conditioned or gives a non-positive price
 * (typical: per-window token mixes barely vary), the prices fall back to catalogue-typical
 * ratios (output 4× input, cache read 0.5× input) scaled so they reproduce the baseline cost per
 * request exactly. With baseline prices p:
 *   input  = p_in  × Δ(input tokens / request)           (all input at the uncached price)
 *   cache  = (p_cache − p_in) × Δ(cache reads / request)  (cache reads replace uncached input)
 *   output = p_out × Δ(output tokens / request), less the error-share part
 *   error  = −p_out × Δ(error share) × baseline output per successful request (failed calls
 *            are assumed to bill input but produce no output)
 *   price  = the rest: the cost change not explained by token counts at baseline prices.
 */
import type { Drivers } from '../../../schemas/alert.ts'
import type { WindowTotals } from './baseline.ts'

type DriverName = Drivers['primary']

interface Prices {
  pu: number
  po: number
  pk: number
}

function fallbackPrices(base: WindowTotals): Prices {
  const u = Math.max(0, base.i - base.k)
  const denom = u + 4 * base.o + 0.5 * base.k
  const pu = denom > 0 ? base.c / denom : 0
  return { pu, po: 4 * pu, pk: 0.5 * pu }
}

function solve3(a: Float64Array, b: Float64Array): [number, number, number] | null {
  const [a00 = 0, a01 = 0, a02 = 0, a11 = 0, a12 = 0, a22 = 0] = a
  const [b0 = 0, b1 = 0, b2 = 0] = b
  const det = a00 * (a11 * a22 - a12 * a12) - a01 * (a01 * a22 - a12 * a02) + a02 * (a01 * a12 - a11 * a02)
  const scale = a00 * a11 * a22
  if (!(scale > 0) || Math.abs(det) < 1e-6 * scale) return null
  const x0 = (b0 * (a11 * a22 - a12 * a12) - a01 * (b1 * a22 - a12 * b2) + a02 * (b1 * a12 - a11 * b2)) / det
  const x1 = (a00 * (b1 * a22 - a12 * b2) - b0 * (a01 * a22 - a12 * a02) + a02 * (a01 * b2 - b1 * a02)) / det
  const x2 = (a00 * (a11 * b2 - b1 * a12) - a01 * (a01 * b2 - b1 * a02) + b0 * (a01 * a12 - a11 * a02)) / det
  return [x0, x1, x2]
}

function solve2(a: Float64Array, b: Float64Array): [number, number] | null {
  const a00 = a[0] ?? 0
  const a01 = a[1] ?? 0
  const a11 = a[3] ?? 0
  const det = a00 * a11 - a01 * a01
  if (!(a00 * a11 > 0) || Math.abs(det) < 1e-6 * a00 * a11) return null
  return [((b[0] ?? 0) * a11 - a01 * (b[1] ?? 0)) / det, (a00 * (b[1] ?? 0) - a01 * (b[0] ?? 0)) / det]
}

/**
 * Per-token prices of the baseline from the model's catalog rates (uncached input, output, cache
 * read), scaled by one factor so they reproduce the baseline cost exactly (batch discounts,
 * overrides and reported costs keep the catalog's ratios). With catalog-priced events the split
 * of a change into input, output and cache is then exact, and `price` is only what the token
 * counts at baseline prices cannot explain (a catalog or reported price change). Null when the
 * catalog does not know the model (the caller falls back to estimatePrices).
 */
export function catalogPrices(base: WindowTotals, rates: { input: number; output: number; cacheRead: number } | null): Prices | null {
  if (!rates || !(rates.input > 0) || !(rates.output > 0)) return null
  const u = Math.max(0, base.i - base.k)
  const atCatalog = u * rates.input + base.o * rates.output + base.k * rates.cacheRead
  if (!(atCatalog > 0) || !(base.c > 0)) return null
  const f = base.c / atCatalog
  return { pu: rates.input * f, po: rates.output * f, pk: rates.cacheRead * f }
}

export function estimatePrices(base: WindowTotals, xx: Float64Array, xy: Float64Array): Prices {
  const fb = fallbackPrices(base)
  if (base.k > 0.01 * base.i) {
    const s = solve3(xx, xy)
    if (s && s[0] > 0 && s[1] > 0 && s[2] > 0 && s[2] <= s[0] * 1.01) return { pu: s[0], po: s[1], pk: s[2] }
    return fb
  }
  const s = solve2(xx, xy)
  if (s && s[0] > 0 && s[1] > 0) return { pu: s[0], po: s[1], pk: 0.5 * s[0] }
  return fb
}

const round = (x: number): number => Math.round(x * 100) / 100

/** Splits the relative change of cost per request between `base` and `cur` (totals over spans). */
export function computeDrivers(base: WindowTotals, cur: WindowTotals, prices: Prices, volumeChangePct = 0): Drivers {
  const zero: Drivers = { input_tokens_per_request: 0, output_tokens_per_request: 0, cache_reads: 0, price: 0, error_share: 0, primary: 'volume' }
  if (!(base.n > 0) || !(cur.n > 0) || !(base.c > 0)) return zero
  const p0 = base.c / base.n
  const p1 = cur.c / cur.n
  const di = cur.i / cur.n - base.i / base.n
  const dk = cur.k / cur.n - base.k / base.n
  const dout = cur.o / cur.n - base.o / base.n
  const e0 = base.e / base.n
  const de = cur.e / cur.n - e0
  const outPerOk = e0 < 1 ? base.o / base.n / (1 - e0) : 0
  const pp = 100 / p0
  const input = prices.pu * di * pp
  const cache = (prices.pk - prices.pu) * dk * pp
  const error = -prices.po * de * outPerOk * pp
  const output = prices.po * dout * pp - error
  const total = (p1 / p0 - 1) * 100
  const price = total - input - cache - output - error
  const parts: [DriverName, number][] = [
    ['input_tokens_per_request', input],
    ['output_tokens_per_request', output],
    ['cache_reads', cache],
    ['price', price],
    ['error_share', error],
    ['volume', volumeChangePct],
  ]
  let primary: DriverName = 'input_tokens_per_request'
  let best = -1
  for (const [name, v] of parts) {
    if (Math.abs(v) > best) {
      best = Math.abs(v)
      primary = name
    }
  }
  return { input_tokens_per_request: round(input), output_tokens_per_request: round(output), cache_reads: round(cache), price: round(price), error_share: round(error), primary }
}
