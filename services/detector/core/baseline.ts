/**
 * Cost-per-request baseline of one key: exponentially weighted sums over absorbed windows
 * (O(1) per window). Holds what the unit-cost test, the drivers and the price regression need.
 */
import { CPR_HALF_LIFE_WINDOWS, DISPERSION_HALF_LIFE_WINDOWS } from './params.ts'

const DECAY = Math.pow(2, -1 / CPR_HALF_LIFE_WINDOWS)
const DISP_DECAY = Math.pow(2, -1 / DISPERSION_HALF_LIFE_WINDOWS)

export interface WindowTotals {
  n: number
  c: number
  q: number
  i: number
  o: number
  k: number
  e: number
  /**
   * Cache write tokens and the cost by token component (uncached input, cache read, cache write,
   * output), when the windows carry them (drivers.ts splits the change exactly with them).
   */
  kw?: number
  cu?: number
  cr?: number
  cw?: number
  co?: number
  /** requests that were retries (the windows' `retries`; absent/0 in windows stored before it) */
  r?: number
}

export class CostBaseline {
  /** windows with requests absorbed (not decayed) and requests absorbed (not decayed) */
  windows = 0
  requests = 0
  // decayed sums
  n = 0
  c = 0
  q = 0
  i = 0
  o = 0
  k = 0
  e = 0
  kw = 0
  cu = 0
  cr = 0
  cw = 0
  co = 0
  r = 0
  // regression of window cost on (uncached input, output, cache read) tokens: X'X and X'y
  xx = new Float64Array(6)
  xy = new Float64Array(3)
  /** EW mean of squared standardized residuals (overdispersion, >= 1 when requests are not iid) */
  private dispSum = 0
  private dispW = 0
  /** EW mean of z³·√n (z standardized window residual, n its requests): the skewness of one request's cost */
  private skewSum = 0

  /** decayed requests and window count over all absorbed windows, zero-request ones included */
  private vn = 0
  private vw = 0

  absorb(w: WindowTotals): void {
    this.vn = this.vn * DECAY + w.n
    this.vw = this.vw * DECAY + 1
    if (w.n <= 0) return
    this.windows++
    this.requests += w.n
    this.n = this.n * DECAY + w.n
    this.c = this.c * DECAY + w.c
    this.q = this.q * DECAY + w.q
    this.i = this.i * DECAY + w.i
    this.o = this.o * DECAY + w.o
    this.k = this.k * DECAY + w.k
    this.e = this.e * DECAY + w.e
    this.kw = this.kw * DECAY + (w.kw ?? 0)
    this.cu = this.cu * DECAY + (w.cu ?? 0)
    this.cr = this.cr * DECAY + (w.cr ?? 0)
    this.cw = this.cw * DECAY + (w.cw ?? 0)
    this.co = this.co * DECAY + (w.co ?? 0)
    this.r = this.r * DECAY + (w.r ?? 0)
    const u = Math.max(0, w.i - w.k)
    const xx = this.xx
    xx[0] = (xx[0] ?? 0) * DECAY + u * u
    xx[1] = (xx[1] ?? 0) * DECAY + u * w.o
    xx[2] = (xx[2] ?? 0) * DECAY + u * w.k
    xx[3] = (xx[3] ?? 0) * DECAY + w.o * w.o
    xx[4] = (xx[4] ?? 0) * DECAY + w.o * w.k
    xx[5] = (xx[5] ?? 0) * DECAY + w.k * w.k
    const xy = this.xy
    xy[0] = (xy[0] ?? 0) * DECAY + u * w.c
    xy[1] = (xy[1] ?? 0) * DECAY + w.o * w.c
    xy[2] = (xy[2] ?? 0) * DECAY + w.k * w.c
  }

  /** Records the standardized residual z of a window that had a baseline to compare with. */
  recordResidual(z: number, n: number): void {
    const zz = Math.min(z * z, 25)
    this.dispSum = this.dispSum * DISP_DECAY + zz
    this.dispW = this.dispW * DISP_DECAY + 1
    const zc = Math.max(-10, Math.min(10, z))
    this.skewSum = this.skewSum * DISP_DECAY + zc * zc * zc * Math.sqrt(n)
  }

  /** Skewness of the cost of one request (from the window residuals; 0 until enough windows). */
  get skew(): number {
    if (this.dispW <= 20) return 0
    return Math.max(0, Math.min(10, this.skewSum / this.dispW / Math.pow(this.dispersion, 1.5)))
  }

  /** Baseline requests per window (gaps count as zero). */
  get volume(): number {
    return this.vw > 0 ? this.vn / this.vw : 0
  }

  /** Baseline cost per request (USD). */
  get unitCost(): number {
    return this.n > 0 ? this.c / this.n : 0
  }

  /** Variance of the per-request cost under the baseline. */
  get unitVariance(): number {
    if (this.n <= 0) return 0
    const m = this.c / this.n
    return Math.max(this.q / this.n - m * m, (0.05 * m) ** 2)
  }

  /** Squared relative standard error of the baseline unit cost (its own uncertainty). */
  get levelRelVar(): number {
    const m = this.unitCost
    return this.n > 0 && m > 0 ? (this.unitVariance * this.dispersion) / this.n / (m * m) : 0
  }

  /** Overdispersion factor applied to the iid variance (never below 1). */
  get dispersion(): number {
    return this.dispW > 20 ? Math.max(1, this.dispSum / this.dispW) : 1
  }

  totals(): WindowTotals {
    return { n: this.n, c: this.c, q: this.q, i: this.i, o: this.o, k: this.k, e: this.e, kw: this.kw, cu: this.cu, cr: this.cr, cw: this.cw, co: this.co, r: this.r }
  }
}
