/**
 * Drivers: the change of cost per request split into input tokens per request, output tokens per
 * request, cache reads, error share and price, in percentage points of change_pct.
 *
 * Exact split (computeExact), when the windows carry the cost of each token component as the
 * aggregator priced it (uncached input, cache read, cache write, output) and those add up to the
 * cost on both sides: with per-request tokens T and per-token prices P = component cost / its
 * tokens, before (0) and after (1),
 *   input  = P0_in × Δ(input tokens / request)                      (all input at the uncached price)
 *   cache  = (P0_read − P0_in) × Δ(cache reads / request) + (P0_write − P0_in) × Δ(cache writes / request)
 *   output = P0_out × Δ(output tokens / request), less the error-share part
 *   error  = −P0_out × Δ(error share) × baseline output per successful request
 *   price  = Σ_component T1 × (P1 − P0): nonzero only when a component's price per token changed
 *            (a catalog or reported price change, batch share), plus any cost the components do
 *            not split (GPU-priced calls)
 * which add up to the change exactly. A component without tokens before is priced at its price
 * after (no price change can be known for it).
 *
 * Fallback (windows without component costs: history stored before they existed, GPU-priced or
 * unpriced traffic): per-token prices from the model's catalog rates scaled to the baseline cost
 * (catalogPrices) when the catalog knows the model; otherwise estimated from the baseline windows:
 * a no-intercept least-squares regression of window cost on (uncached input, output,
 * cache-read) tokens. When that regression is ill-conditioned or gives a non-positive price
 * (typical: per-window token mixes barely vary), the prices fall back to catalogue-typical
 * ratios (output 4× input, cache read 0.5× input) scaled so they reproduce the baseline cost per
 * request exactly. With baseline prices p the same formulas apply, and price is the rest: the
 * cost change not explained by token counts at baseline prices.
 *
 * Burn rate: the change of volume (requests per window) is split too. When the error share rose,
 * the calls added by it (failed calls are retried: with the same successful calls, volume grows by
 * (1 − share before) / (1 − share after)) are errors/retries, the rest is volume; multiplicatively,
 * so the two parts of a compound change are apportioned by their logarithms.
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

/**
 * Relative tolerance within which the component costs must add up to the cost for the exact
 * split (float sums of many calls; a baseline still holding windows stored before the components
 * existed exceeds it until those have decayed away).
 */
export const COMPONENT_TOLERANCE = 1e-3

/** Whether the totals carry component costs that add up to their cost. */
export function hasComponents(t: WindowTotals): boolean {
  if (!(t.c > 0)) return false
  const parts = (t.cu ?? 0) + (t.cr ?? 0) + (t.cw ?? 0) + (t.co ?? 0)
  return Math.abs(parts - t.c) <= COMPONENT_TOLERANCE * t.c
}

interface Parts {
  input: number
  output: number
  cache: number
  price: number
  error: number
}

/** Per-token price of a component: its cost over its tokens, or the other side's price when it had no tokens. */
function unitPrice(cost: number, tokens: number, other: number): number {
  return tokens > 0 ? cost / tokens : other
}

/** The exact split (both totals carry components); in percentage points of the base cost per request. */
function computeExact(base: WindowTotals, cur: WindowTotals): Parts {
  const n0 = base.n
  const n1 = cur.n
  const u0 = Math.max(0, base.i - base.k - (base.kw ?? 0))
  const u1 = Math.max(0, cur.i - cur.k - (cur.kw ?? 0))
  const w0 = base.kw ?? 0
  const w1 = cur.kw ?? 0
  const p1 = { u: unitPrice(cur.cu ?? 0, u1, 0), r: unitPrice(cur.cr ?? 0, cur.k, 0), w: unitPrice(cur.cw ?? 0, w1, 0), o: unitPrice(cur.co ?? 0, cur.o, 0) }
  const p0 = { u: unitPrice(base.cu ?? 0, u0, p1.u), r: unitPrice(base.cr ?? 0, base.k, p1.r), w: unitPrice(base.cw ?? 0, w0, p1.w), o: unitPrice(base.co ?? 0, base.o, p1.o) }
  // a component used on neither side has no price; cache reads and writes replace uncached input
  if (!(base.k > 0) && !(cur.k > 0)) p0.r = p1.r = p0.u
  if (!(w0 > 0) && !(w1 > 0)) p0.w = p1.w = p0.u
  const pp = 100 / (base.c / n0)
  const di = cur.i / n1 - base.i / n0
  const dr = cur.k / n1 - base.k / n0
  const dw = w1 / n1 - w0 / n0
  const dout = cur.o / n1 - base.o / n0
  const e0 = base.e / n0
  const de = cur.e / n1 - e0
  const outPerOk = e0 < 1 ? base.o / n0 / (1 - e0) : 0
  const input = p0.u * di * pp
  const cache = ((p0.r - p0.u) * dr + (p0.w - p0.u) * dw) * pp
  const error = -p0.o * de * outPerOk * pp
  const output = p0.o * dout * pp - error
  const total = ((cur.c / n1) / (base.c / n0) - 1) * 100
  // Σ T1 × ΔP, and what the components do not split, as the rest (exact by construction)
  const price = total - input - cache - output - error
  return { input, output, cache, price, error }
}

/** The fallback split at estimated or catalog per-token prices. */
function computeEstimated(base: WindowTotals, cur: WindowTotals, prices: Prices): Parts {
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
  return { input, output, cache, price, error }
}

/**
 * The part of a volume change (in percentage points) made of calls added by a higher error share
 * (failed calls and their retries): 0 unless both the volume and the error share rose. The share
 * is that of the retries when the windows count more of them than failed calls (`retries`,
 * migration 043), else that of the failed calls (each assumed retried once).
 */
export function retryVolumePp(base: WindowTotals, cur: WindowTotals, volumeChangePct: number): number {
  if (!(volumeChangePct > 0) || !(base.n > 0) || !(cur.n > 0)) return 0
  const s0 = Math.max(base.e, base.r ?? 0) / base.n // the retries when the windows count them, else the failed calls
  const s1 = Math.max(cur.e, cur.r ?? 0) / cur.n
  if (!(s1 > s0) || !(s1 < 1)) return 0
  const retry = Math.log((1 - s0) / (1 - s1))
  const all = Math.log(1 + volumeChangePct / 100)
  return volumeChangePct * Math.min(1, Math.max(0, retry / all))
}

/**
 * Splits the relative change of cost per request between `base` and `cur` (totals over spans):
 * exactly from the component costs when both carry them, else at `prices`. `volumeChangePct`
 * (burn-rate alerts) is the change of requests per window, its retry part counted as error share.
 */
export function computeDrivers(base: WindowTotals, cur: WindowTotals, prices: Prices, volumeChangePct = 0): Drivers {
  const zero: Drivers = { input_tokens_per_request: 0, output_tokens_per_request: 0, cache_reads: 0, price: 0, error_share: 0, primary: 'volume' }
  if (!(base.n > 0) || !(cur.n > 0) || !(base.c > 0)) return zero
  const { input, output, cache, price, error: errorCpr } = hasComponents(base) && hasComponents(cur) ? computeExact(base, cur) : computeEstimated(base, cur, prices)
  const retry = retryVolumePp(base, cur, volumeChangePct)
  const error = errorCpr + retry
  const parts: [DriverName, number][] = [
    ['input_tokens_per_request', input],
    ['output_tokens_per_request', output],
    ['cache_reads', cache],
    ['price', price],
    ['error_share', error],
    ['volume', volumeChangePct - retry],
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
