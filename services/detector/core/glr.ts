/**
 * Evidence since a change point, for every candidate change point at once: a generalized
 * likelihood ratio over the change point (and so over the shift size) of a Gaussian mean shift
 * with known pre-change level. Per window the key pushes its deviation from the baseline
 * expectation d = cost − expected (winsorized at ±WINDOW_Z_CAP standard deviations, so a single
 * window — a spike, one huge request — can never carry a break), the expectation e and the
 * variance v. For a candidate change point k the requests since k give
 *
 *   r̂ = D/E (relative shift since k),  se² = V·dispersion/E² + se²(baseline),  z = r̂/se
 *
 * (z from the winsorized deviations, the size r̂ of the shift from the raw ones)
 *
 * and the test fires when some k (with at least MIN_PERSIST_WINDOWS informative windows since it)
 * has z beyond EVIDENCE_Z (skew-corrected, see scan) in one direction and a shift estimate of at least MAGNITUDE_FRACTION ×
 * threshold. Whatever the requests per window: a quiet series or a night hour fires once its
 * requests since the change are conclusive, a large shift within a few windows, a shift just
 * over the threshold later — each near its own evidence floor.
 *
 * Candidates are every window of the last DENSE_CANDIDATES and then geometrically spaced back to
 * LOOKBACK_WINDOWS, read from prefix sums in a ring: O(candidates) per window, bounded memory.
 */
import { DENSE_CANDIDATES, EVIDENCE_Z, INDIFFERENCE_LOW, MAGNITUDE_Z, LOOKBACK_WINDOWS, MAGNITUDE_FRACTION, MIN_PERSIST_WINDOWS, WINDOW_Z_CAP } from './params.ts'

/** Offsets (windows back from the newest) of the candidate change points, ascending. */
const OFFSETS: readonly number[] = (() => {
  const xs: number[] = []
  for (let k = MIN_PERSIST_WINDOWS; k <= DENSE_CANDIDATES; k++) xs.push(k)
  let k = DENSE_CANDIDATES
  while (k < LOOKBACK_WINDOWS - 1) {
    k = Math.min(LOOKBACK_WINDOWS - 1, Math.ceil(k * 1.15))
    xs.push(k)
  }
  return xs
})()

/** Cornish–Fisher factor (z² − 1)/6 at the evidence level. */
const CF = (EVIDENCE_Z * EVIDENCE_Z - 1) / 6

/**
 * The z an upward (z > 0) shift measured over `requests` requests must reach: EVIDENCE_Z, plus
 * the Cornish–Fisher correction for the skew of a sum of that many skewed per-request costs.
 */
export function evidenceLevel(z: number, skew: number, requests: number): number {
  return z > 0 && skew > 0 ? EVIDENCE_Z + (skew * CF) / Math.sqrt(Math.max(1, requests)) : EVIDENCE_Z
}

export interface Evidence {
  dir: 1 | -1
  /** start (ms) of the window the shift is estimated to have begun with */
  start: number
  /** estimated relative shift since then, and its z */
  rel: number
  z: number
}

export class ShiftEvidence {
  private readonly cap = LOOKBACK_WINDOWS
  // prefix sums at the end of each window (slot i holds the sums through window i)
  private readonly pd = new Float64Array(LOOKBACK_WINDOWS)
  /** unclipped deviations: the size of the shift (the clipped ones carry its evidence) */
  private readonly pu = new Float64Array(LOOKBACK_WINDOWS)
  private readonly pe = new Float64Array(LOOKBACK_WINDOWS)
  private readonly pv = new Float64Array(LOOKBACK_WINDOWS)
  private readonly pn = new Float64Array(LOOKBACK_WINDOWS)
  private readonly pr = new Float64Array(LOOKBACK_WINDOWS)
  private readonly ts = new Float64Array(LOOKBACK_WINDOWS)
  private head = -1
  private size = 0
  private d = 0
  private u = 0
  private e = 0
  private v = 0
  private n = 0
  private r = 0

  /** Forgets all evidence (after an alert, a long gap, or while the key must not test). */
  reset(): void {
    this.size = 0
    this.head = -1
    this.d = this.u = this.e = this.v = this.n = this.r = 0
  }

  /** One window of `requests`: cost c against expectation xc with variance xv (xc = 0: nothing to compare with). */
  push(t: number, requests: number, c: number, xc: number, xv: number): void {
    if (xc > 0 && xv > 0) {
      const sd = Math.sqrt(xv)
      const dev = Math.min(Math.max(c - xc, -WINDOW_Z_CAP * sd), WINDOW_Z_CAP * sd)
      this.d += dev
      this.u += c - xc
      this.e += xc
      this.v += xv
      this.n += 1
      this.r += requests
    }
    this.head = (this.head + 1) % this.cap
    this.pd[this.head] = this.d
    this.pu[this.head] = this.u
    this.pe[this.head] = this.e
    this.pv[this.head] = this.v
    this.pn[this.head] = this.n
    this.pr[this.head] = this.r
    this.ts[this.head] = t
    if (this.size < this.cap) this.size++
    // rebase now and then so the running sums stay small against the spans read from them
    if (this.r > 1e9) this.rebase()
  }

  private rebase(): void {
    const o = (this.head - this.size + 1 + this.cap) % this.cap
    const d0 = this.pd[o] ?? 0
    const u0 = this.pu[o] ?? 0
    const e0 = this.pe[o] ?? 0
    const v0 = this.pv[o] ?? 0
    const n0 = this.pn[o] ?? 0
    const r0 = this.pr[o] ?? 0
    for (let i = 0; i < this.cap; i++) {
      this.pd[i] = (this.pd[i] ?? 0) - d0
      this.pu[i] = (this.pu[i] ?? 0) - u0
      this.pe[i] = (this.pe[i] ?? 0) - e0
      this.pv[i] = (this.pv[i] ?? 0) - v0
      this.pn[i] = (this.pn[i] ?? 0) - n0
      this.pr[i] = (this.pr[i] ?? 0) - r0
    }
    this.d -= d0
    this.u -= u0
    this.e -= e0
    this.v -= v0
    this.n -= n0
    this.r -= r0
  }

  /**
   * One pass over the candidate change points. `strongest` is the candidate whose evidence is
   * most conclusive (largest |z| against the level it must clear); it is a `hit` when that level
   * is cleared and the shift estimated over it is at least MAGNITUDE_FRACTION × threshold (a
   * fraction) in the same direction and beyond the indifference level INDIFFERENCE_LOW ×
   * threshold by MAGNITUDE_Z standard errors. Only the most conclusive candidate is sized, not any
   * short one that happens to run high: on a busy series a shift just under the threshold is
   * conclusive, and short spans of it would otherwise measure over the threshold by chance.
   *
   * `dispersion` scales the variance (overdispersion beyond iid requests); `baseRelVar` is the
   * squared relative standard error of the baseline; `skew` the skewness of the cost of one
   * request: the sum of N skewed requests is itself skewed (by skew/√N), so an upward z must
   * clear the Cornish–Fisher corrected quantile EVIDENCE_Z + skew/(6√N)·(EVIDENCE_Z² − 1): a few
   * requests with long prompts at night are not conclusive evidence.
   */
  scan(threshold: number, dispersion: number, baseRelVar: number, skew: number): { hit: Evidence | null; strongest: Evidence | null } {
    let topJ = -1
    let topZ = 0
    let topMargin = 0
    let topRel = 0
    let topSe = 0
    for (const off of OFFSETS) {
      if (off >= this.size) break
      const j = (this.head - off + this.cap) % this.cap
      if (this.n - (this.pn[j] ?? 0) < MIN_PERSIST_WINDOWS) continue
      const e = this.e - (this.pe[j] ?? 0)
      if (!(e > 0)) continue
      const se = Math.sqrt(((this.v - (this.pv[j] ?? 0)) * dispersion) / (e * e) + baseRelVar)
      const z = (this.d - (this.pd[j] ?? 0)) / e / se
      const need = evidenceLevel(z, skew, this.r - (this.pr[j] ?? 0))
      const margin = Math.abs(z) / need
      if (margin > topMargin) {
        topJ = j
        topZ = z
        topMargin = margin
        topRel = (this.u - (this.pu[j] ?? 0)) / e
        topSe = se
      }
    }
    if (topJ < 0) return { hit: null, strongest: null }
    const strongest: Evidence = { dir: topZ >= 0 ? 1 : -1, start: this.ts[(topJ + 1) % this.cap] ?? 0, rel: topRel, z: topZ }
    const size = strongest.dir * topRel
    const hit = topMargin >= 1 && size >= MAGNITUDE_FRACTION * threshold && size - INDIFFERENCE_LOW * threshold >= MAGNITUDE_Z * topSe ? strongest : null
    return { hit, strongest }
  }
}
