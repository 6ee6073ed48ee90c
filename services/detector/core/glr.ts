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
 * LOOKBACK_WINDOWS (checkpoints of the running sums, thinned as they age): O(candidates) per
 * window and a fixed 3.5 KB per key.
 */
import { DENSE_CANDIDATES, EVIDENCE_Z, INDIFFERENCE_LOW, MAGNITUDE_Z, LOOKBACK_WINDOWS, MAGNITUDE_FRACTION, MIN_PERSIST_WINDOWS, WINDOW_Z_CAP } from './params.ts'
import { freeOwnedBytes } from './cells.ts'

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

/** Sums kept per checkpoint: winsorized deviation, raw deviation, expectation, variance, informative windows, requests. */
const D = 0
const U = 1
const E = 2
const V = 3
const N = 4
const R = 5
/** window count at the checkpoint (its age is `count − this`), and the start of the window after it */
const W = 6
const T = 7
const STRIDE = 8
/** Checkpoints past the dense zone are kept at least this factor apart in age. */
const SPACING = 1.1
/**
 * Fixed capacity: the DENSE_CANDIDATES dense checkpoints, the newest, and the geometric ones. With
 * SPACING 1.1 the thinning keeps at most 52 in all at LOOKBACK_WINDOWS 480 (ratios between
 * neighbours settle between 1.1 and ~1.25); should a longer look-back need more, the oldest go.
 */
const CAPACITY = 56

export class ShiftEvidence {
  /**
   * Checkpoints, oldest first: the running sums at the end of a window (prefix sums), so the sums
   * since a checkpoint are the running totals less its own. Every window of the last
   * DENSE_CANDIDATES is a checkpoint; older ones are thinned so that neighbours are at least
   * SPACING apart in age (an exponential histogram of change points), back to LOOKBACK_WINDOWS:
   * about 50 candidates in a fixed 3.5 KB instead of a 27 KB prefix ring of every window.
   */
  /** allocated for 8 checkpoints at first, doubled up to CAPACITY (a key that only sends a few windows stays small) */
  private cp = new Float64Array(8 * STRIDE)
  private len = 0
  /** windows pushed since the last reset */
  private count = 0
  private d = 0
  private u = 0
  private e = 0
  private v = 0
  private n = 0
  private r = 0

  /** Forgets all evidence (after an alert, a long gap, or while the key must not test). */
  reset(): void {
    this.len = 0
    this.count = 0
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
    // the newest checkpoint's T is the start of the window after it: this one
    if (this.len > 0) this.cp[(this.len - 1) * STRIDE + T] = t
    this.count++
    this.thin()
    if ((this.len + 1) * STRIDE > this.cp.length && this.cp.length < CAPACITY * STRIDE) {
      const grown = new Float64Array(Math.min(CAPACITY, 2 * (this.cp.length / STRIDE)) * STRIDE)
      grown.set(this.cp)
      freeOwnedBytes(this.cp)
      this.cp = grown
    }
    const o = this.len * STRIDE
    const cp = this.cp
    cp[o + D] = this.d
    cp[o + U] = this.u
    cp[o + E] = this.e
    cp[o + V] = this.v
    cp[o + N] = this.n
    cp[o + R] = this.r
    cp[o + W] = this.count
    cp[o + T] = NaN
    this.len++
    // rebase now and then so the running sums stay small against the spans read from them
    if (this.r > 1e9) this.rebase()
  }

  /**
   * Drops checkpoints older than LOOKBACK_WINDOWS and, past the dense zone, any checkpoint that is
   * not at least SPACING younger than the older one kept before it; leaves room for one more.
   */
  private thin(): void {
    const cp = this.cp
    let keep = 0
    let lastAge = Infinity
    for (let i = 0; i < this.len; i++) {
      const age = this.count - (cp[i * STRIDE + W] ?? 0)
      if (age >= LOOKBACK_WINDOWS) continue
      const dense = age <= DENSE_CANDIDATES
      if (!dense && age * SPACING > lastAge && i < this.len - 1) continue
      if (keep !== i) cp.copyWithin(keep * STRIDE, i * STRIDE, (i + 1) * STRIDE)
      keep++
      lastAge = age
    }
    // never more than the capacity (drop the oldest): cannot happen with the spacing above, but bounded regardless
    if (keep >= CAPACITY) {
      const drop = keep - CAPACITY + 1
      cp.copyWithin(0, drop * STRIDE, keep * STRIDE)
      keep -= drop
    }
    this.len = keep
  }

  private rebase(): void {
    if (this.len === 0) return
    const cp = this.cp
    const base = [cp[D] ?? 0, cp[U] ?? 0, cp[E] ?? 0, cp[V] ?? 0, cp[N] ?? 0, cp[R] ?? 0]
    for (let i = 0; i < this.len; i++) for (let k = 0; k < 6; k++) cp[i * STRIDE + k] = (cp[i * STRIDE + k] ?? 0) - (base[k] ?? 0)
    this.d -= base[D] ?? 0
    this.u -= base[U] ?? 0
    this.e -= base[E] ?? 0
    this.v -= base[V] ?? 0
    this.n -= base[N] ?? 0
    this.r -= base[R] ?? 0
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
    const cp = this.cp
    // candidates: every checkpoint at least MIN_PERSIST_WINDOWS old (the newest is the running total itself)
    for (let i = this.len - 1; i >= 0; i--) {
      const o = i * STRIDE
      if (this.count - (cp[o + W] ?? 0) < MIN_PERSIST_WINDOWS) continue
      if (this.n - (cp[o + N] ?? 0) < MIN_PERSIST_WINDOWS) continue
      const e = this.e - (cp[o + E] ?? 0)
      if (!(e > 0)) continue
      // |z| ≤ |D| / √(V·dispersion) (the baseline's own variance only adds to se): a candidate
      // whose bound cannot beat the best so far at the evidence floor is skipped without a root
      const dd = this.d - (cp[o + D] ?? 0)
      const vd = (this.v - (cp[o + V] ?? 0)) * dispersion
      const bound = topMargin * EVIDENCE_Z
      if (dd * dd <= bound * bound * vd) continue
      const se = Math.sqrt(vd / (e * e) + baseRelVar)
      const z = dd / e / se
      // the level is at least EVIDENCE_Z: a candidate that cannot beat the best so far even at
      // that level needs no skew correction (the hot path: most candidates, most windows)
      if (Math.abs(z) / EVIDENCE_Z <= topMargin) continue
      const need = evidenceLevel(z, skew, this.r - (cp[o + R] ?? 0))
      const margin = Math.abs(z) / need
      if (margin > topMargin) {
        topJ = i
        topZ = z
        topMargin = margin
        topRel = (this.u - (cp[o + U] ?? 0)) / e
        topSe = se
      }
    }
    if (topJ < 0) return { hit: null, strongest: null }
    const strongest: Evidence = { dir: topZ >= 0 ? 1 : -1, start: cp[topJ * STRIDE + T] ?? 0, rel: topRel, z: topZ }
    const size = strongest.dir * topRel
    const hit = topMargin >= 1 && size >= MAGNITUDE_FRACTION * threshold && size - INDIFFERENCE_LOW * threshold >= MAGNITUDE_Z * topSe ? strongest : null
    return { hit, strongest }
  }
}
