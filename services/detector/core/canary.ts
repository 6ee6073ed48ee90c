/**
 * Canary comparison of one series: while two or more deployment IDs serve the same minutes (a
 * canary, a rolling deploy), the cost per request of a newer ID is compared directly with an
 * older one's, over only those shared minutes. Per ID: requests, cost, cost winsorized per window
 * (each window's deviation from the series' baseline capped at ±WINDOW_Z_CAP standard deviations,
 * as in glr.ts: one window with one enormous request cannot carry the evidence), and cost².
 *
 * A newer ID (first seen after the older one) is a break when, over at least MIN_PERSIST_WINDOWS
 * shared windows, the one-sided two-sample z of the winsorized means reaches the detector's
 * evidence level (EVIDENCE_Z, skew-corrected for the newer ID's requests: evidenceLevel), the
 * raw relative difference is at least the threshold, and beyond the indifference level
 * (INDIFFERENCE_LOW × threshold) by MAGNITUDE_Z standard errors.
 *
 * Bounded: at most MAX_CANARY_IDS IDs (least recently seen evicted), each dropped once it has not
 * served for CANARY_FORGET_WINDOWS windows.
 */
import { evidenceLevel } from './glr.ts'
import { INDIFFERENCE_LOW, MAGNITUDE_Z, MIN_PERSIST_WINDOWS, WINDOW_Z_CAP } from './params.ts'

export const MAX_CANARY_IDS = 4
export const CANARY_FORGET_WINDOWS = 10

interface IdSums {
  first: number
  last: number
  /**
   * an older ID it shared minutes with has stopped serving: the rollout it belonged to is over and
   * the series' own signal owns it (it is no longer compared, so a routine deploy of one service
   * is not compared with another service's ID once its own predecessor is gone)
   */
  settled: boolean
  /** shared windows, requests, raw cost, winsorized cost, cost² (over shared windows only) */
  w: number
  n: number
  c: number
  cw: number
  q: number
}

export interface CanaryHit {
  id: string
  olderId: string
  /** first window the newer ID was seen */
  first: number
  /** relative difference of cost per request (raw), and the z of the winsorized one */
  rel: number
  z: number
  /** the newer ID's share of the requests of the shared windows */
  share: number
  oldMean: number
  newMean: number
}

export class CanaryCompare {
  private readonly ids = new Map<string, IdSums>()

  /** Forgets the sums (after an alert opens or closes, a long gap); keeps when each ID was first and last seen. */
  restart(): void {
    for (const s of this.ids.values()) s.w = s.n = s.c = s.cw = s.q = 0
  }

  /** Whether the ID served within the last CANARY_FORGET_WINDOWS windows before t. */
  serving(id: string, t: number, windowMs: number): boolean {
    const s = this.ids.get(id)
    return s !== undefined && t - s.last <= CANARY_FORGET_WINDOWS * windowMs
  }

  /**
   * One window: request counts, costs and squared costs per deployment ID (costs null: not
   * carried, e.g. windows rebuilt from history), against the series' baseline unit cost mu and
   * per-request variance (0: none yet, no winsorizing).
   */
  push(
    t: number,
    windowMs: number,
    deps: Record<string, number> | null,
    costs: Record<string, number> | null | undefined,
    sq: Record<string, number> | null | undefined,
    mu: number,
    varReq: number,
  ): void {
    for (const [id, s] of this.ids) if (t - s.last > CANARY_FORGET_WINDOWS * windowMs) this.drop(id, s)
    if (!deps) return
    const present: string[] = []
    for (const id in deps) if ((deps[id] ?? 0) > 0) present.push(id)
    for (const id of present) {
      const s = this.ids.get(id)
      if (s) s.last = t
      else {
        this.ids.set(id, { first: t, last: t, settled: false, w: 0, n: 0, c: 0, cw: 0, q: 0 })
        if (this.ids.size > MAX_CANARY_IDS) this.evict()
      }
    }
    if (present.length < 2 || !costs || !sq) return
    for (const id of present) if (costs[id] === undefined || sq[id] === undefined) return
    for (const id of present) {
      const s = this.ids.get(id)
      if (!s) continue
      const n = deps[id] ?? 0
      const c = costs[id] ?? 0
      let cw = c
      if (mu > 0 && varReq > 0) {
        const sd = Math.sqrt(n * varReq)
        cw = n * mu + Math.min(Math.max(c - n * mu, -WINDOW_Z_CAP * sd), WINDOW_Z_CAP * sd)
      }
      s.w++
      s.n += n
      s.c += c
      s.cw += cw
      s.q += sq[id] ?? 0
    }
  }

  private evict(): void {
    let oldest: string | undefined
    let oldestT = Infinity
    for (const [id, s] of this.ids) {
      if (s.last < oldestT) {
        oldestT = s.last
        oldest = id
      }
    }
    const s = oldest !== undefined ? this.ids.get(oldest) : undefined
    if (oldest !== undefined && s) this.drop(oldest, s)
  }

  private drop(id: string, gone: IdSums): void {
    this.ids.delete(id)
    if (gone.w === 0) return
    for (const s of this.ids.values()) if (s.first > gone.first && s.w > 0) s.settled = true
  }

  /**
   * The most conclusive newer ID that is costlier by at least the threshold than every older ID
   * serving the same minutes, or null. Every older ID, not just one: several services behind one
   * series each have their own IDs and their own cost per request, and a routine deploy of one
   * service must not be compared with another service's ID (which it does not replace).
   */
  check(threshold: number, skew: number, varReq: number): CanaryHit | null {
    let best: CanaryHit | null = null
    let bestMargin = 0
    for (const [nid, a] of this.ids) {
      if (a.settled || a.w < MIN_PERSIST_WINDOWS || a.n < 2) continue
      let weakest: CanaryHit | null = null
      let weakestMargin = Infinity
      for (const [oid, b] of this.ids) {
        if (oid === nid || b.first >= a.first || b.w === 0) continue
        const ma = a.c / a.n
        const mb = b.n > 0 ? b.c / b.n : 0
        // a newer ID not yet conclusively costlier than some older ID it shares minutes with
        if (b.w < MIN_PERSIST_WINDOWS || b.n < 2 || !(mb > 0)) {
          weakestMargin = 0
          break
        }
        // a few requests of the newer ID understate the spread of a long-tailed cost (their own
        // sample variance is small exactly when they happen to run high): under "no change" both
        // IDs share the older ID's spread, and the series' baseline per-request variance
        const vb = Math.max(b.q / b.n - mb * mb, varReq, 0)
        const va = Math.max(a.q / a.n - ma * ma, vb)
        const se = Math.sqrt(va / a.n + vb / b.n)
        const z = se > 0 ? (a.cw / a.n - b.cw / b.n) / se : 0
        const rel = ma / mb - 1
        const relSe = se / mb
        const margin = z / evidenceLevel(z, skew, a.n)
        if (margin < 1 || rel < threshold || rel - INDIFFERENCE_LOW * threshold < MAGNITUDE_Z * relSe) {
          weakestMargin = 0
          break
        }
        if (margin < weakestMargin) {
          weakestMargin = margin
          weakest = { id: nid, olderId: oid, first: a.first, rel, z, share: a.n / (a.n + b.n), oldMean: mb, newMean: ma }
        }
      }
      if (weakest && weakestMargin >= 1 && weakestMargin > bestMargin) {
        bestMargin = weakestMargin
        best = weakest
      }
    }
    return best
  }
}
