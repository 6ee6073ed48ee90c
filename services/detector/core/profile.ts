/**
 * Burn-rate baseline of one key: the expected cost of a window at its time of day and week.
 *
 * - Once a week of history exists: the same hour of the same weekday (168 hour-of-week buckets,
 *   weeks folded with PROFILE_DAY_WEIGHT on the newest), so a quiet weekend followed by a normal
 *   Monday is expected, not a break.
 * - Before that: the same hour of the same kind of day (weekday or weekend, 24 buckets each,
 *   days folded the same way), so Monday is compared with Friday, not with Sunday.
 * - Before a day of that kind: an exponentially weighted level of cost per window (the caller
 *   widens the tolerance).
 *
 * The profile is multiplied by a level factor: the exponentially weighted ratio of the absorbed
 * (winsorized) cost to what the profile expected, half-life LEVEL_RATIO_HALF_LIFE_WINDOWS. It
 * follows organic growth of a few % a day (a weekly profile alone would be a week behind) and lets
 * the baseline recover from any change that did not page instead of staying pinned.
 * Expectations are linearly interpolated between bucket centres.
 */
import { BURN_LEVEL_HALF_LIFE_WINDOWS, LEVEL_RATIO_HALF_LIFE_WINDOWS, PROFILE_BUCKETS, PROFILE_DAY_WEIGHT } from './params.ts'

const DAY_MS = 86_400_000
const WEEK_MS = 7 * DAY_MS
const BUCKET_MS = DAY_MS / PROFILE_BUCKETS
const LEVEL_DECAY = Math.pow(2, -1 / BURN_LEVEL_HALF_LIFE_WINDOWS)
const RATIO_DECAY = Math.pow(2, -1 / LEVEL_RATIO_HALF_LIFE_WINDOWS)
const RESID_DECAY = Math.pow(2, -1 / 240)

/**
 * Mean cost per window per bucket of a cycle (a day or a week), cycles folded exponentially.
 * Windows are absorbed in time order, so only the bucket being filled and the one before it can
 * still be read as "this cycle" (expectations are read at most an interpolation step behind the
 * absorbed time): those two are kept unfolded, older ones are folded into the history as
 * absorption moves on. History is Float32 (7 significant digits), cycle counts saturate at 255
 * (only "none yet" matters): about 5 bytes per bucket instead of 34.
 */
class CycleBuckets {
  /** the profile's shared stores (one allocation per profile, not per cycle kind) and this cycle's offsets in them */
  private readonly hist: Float32Array
  private readonly histCycles: Uint8Array
  /** the two most recent buckets absorbed into, not yet folded: [bucket, cycle, sum, count] × 2, newest first, from `oo` */
  private readonly open: Float64Array
  private readonly off: number
  private readonly oo: number
  readonly buckets: number
  private readonly cycleMs: number

  constructor(cycleMs: number, hist: Float32Array, histCycles: Uint8Array, off: number, open: Float64Array, oo: number) {
    this.cycleMs = cycleMs
    this.buckets = Math.round(cycleMs / BUCKET_MS)
    this.hist = hist
    this.histCycles = histCycles
    this.off = off
    this.open = open
    this.oo = oo
    open.fill(-1, oo, oo + 2)
    open.fill(-1, oo + 4, oo + 6)
  }

  /** cycle index and fractional bucket position (bucket centres at .5) of time t */
  position(t: number): { cycle: number; pos: number } {
    // cycles start on a Monday 00:00 UTC for weeks (1970-01-05 was a Monday), at 00:00 for days
    const origin = this.cycleMs === WEEK_MS ? 4 * DAY_MS : 0
    const cycle = Math.floor((t - origin) / this.cycleMs)
    return { cycle, pos: (t - origin - cycle * this.cycleMs) / BUCKET_MS }
  }

  absorb(t: number, cost: number): void {
    const { cycle, pos } = this.position(t)
    const b = Math.floor(pos)
    const o = this.open
    const x = this.oo
    if (o[x] !== b || o[x + 1] !== cycle) {
      if (o[x + 4] === b && o[x + 5] === cycle) {
        // back to the older open bucket (cannot happen in time order; kept exact regardless)
        o.copyWithin(x, x + 4, x + 8)
      } else {
        this.fold(x + 4)
        o.copyWithin(x + 4, x, x + 4)
      }
      o[x] = b
      o[x + 1] = cycle
      o[x + 2] = 0
      o[x + 3] = 0
    }
    o[x + 2] = (o[x + 2] ?? 0) + cost
    o[x + 3] = (o[x + 3] ?? 0) + 1
  }

  private fold(at: number): void {
    const o = this.open
    const b = o[at] ?? -1
    const n = o[at + 3] ?? 0
    if (b < 0 || n < 1) return
    const mean = (o[at + 2] ?? 0) / n
    const i = this.off + b
    const k = this.histCycles[i] ?? 0
    this.hist[i] = k === 0 ? mean : (this.hist[i] ?? 0) * (1 - PROFILE_DAY_WEIGHT) + mean * PROFILE_DAY_WEIGHT
    this.histCycles[i] = Math.min(k + 1, 255)
  }

  /** Mean cost per window of bucket b from cycles before `cycle`, or NaN when none. */
  private bucketMean(b: number, cycle: number): number {
    const i = this.off + b
    const k = this.histCycles[i] ?? 0
    const o = this.open
    for (let at = this.oo; at <= this.oo + 4; at += 4) {
      if (o[at] !== b) continue
      const cc = o[at + 1] ?? -1
      const n = o[at + 3] ?? 0
      // an open bucket of an earlier cycle counts as folded
      if (cc >= 0 && cc < cycle && n > 0) {
        const mean = (o[at + 2] ?? 0) / n
        return k === 0 ? mean : (this.hist[i] ?? 0) * (1 - PROFILE_DAY_WEIGHT) + mean * PROFILE_DAY_WEIGHT
      }
    }
    return k > 0 ? (this.hist[i] ?? 0) : NaN
  }

  /** Expected cost of the window starting at t from earlier cycles, or NaN. */
  expected(t: number): number {
    const { cycle, pos } = this.position(t)
    const p = pos - 0.5
    const b0 = Math.floor(p)
    const frac = p - b0
    const B = this.buckets
    const m0 = this.bucketMean((b0 + B) % B, cycle)
    const m1 = this.bucketMean((b0 + 1) % B, cycle)
    if (Number.isNaN(m0) || Number.isNaN(m1)) return NaN
    return m0 * (1 - frac) + m1 * frac
  }
}

const RATIO_MIN_WINDOWS = 60

function learnRatio(r: Float64Array, at: number, cost: number, expected: number): void {
  if (!(expected > 0)) return
  r[at] = (r[at] ?? 0) * RATIO_DECAY + cost
  r[at + 1] = (r[at + 1] ?? 0) * RATIO_DECAY + expected
  r[at + 2] = (r[at + 2] ?? 0) + 1
}

/** Level factor: recent cost against what the profile expected (1 until known), within [0.2, 5]. */
function ratioOf(r: Float64Array, at: number): number {
  const den = r[at + 1] ?? 0
  return den > 0 ? Math.min(5, Math.max(0.2, (r[at] ?? 0) / den)) : 1
}

function isWeekend(t: number): boolean {
  const dow = (Math.floor(t / DAY_MS) + 4) % 7 // 0 = Sunday
  return dow === 0 || dow === 6
}

/** Offsets in the profile's Float64 store: the open buckets of the three cycles, then the two level factors. */
const OPEN_WEEK = 0
const OPEN_WEEKDAY = 8
const OPEN_WEEKEND = 16
const WEEK_RATIO = 24
const DAY_RATIO = 27

export class BurnProfile {
  // three typed arrays per profile, not eleven: each typed array costs ~200 B of heap beside its data
  private readonly hist = new Float32Array(Math.round(WEEK_MS / BUCKET_MS) + 2 * Math.round(DAY_MS / BUCKET_MS))
  private readonly histCycles = new Uint8Array(this.hist.length)
  /** open buckets and level factors ([num, den, windows] against the weekly and the day-kind profile) */
  private readonly f = new Float64Array(30)
  private readonly week = new CycleBuckets(WEEK_MS, this.hist, this.histCycles, 0, this.f, OPEN_WEEK)
  private readonly weekday = new CycleBuckets(DAY_MS, this.hist, this.histCycles, Math.round(WEEK_MS / BUCKET_MS), this.f, OPEN_WEEKDAY)
  private readonly weekend = new CycleBuckets(DAY_MS, this.hist, this.histCycles, Math.round(WEEK_MS / BUCKET_MS) + Math.round(DAY_MS / BUCKET_MS), this.f, OPEN_WEEKEND)
  private levelSum = 0
  private levelW = 0
  levelWindows = 0
  private residSum = 0
  private residW = 0

  /** Recent level: fed every window as it arrives (it only serves before a day of history). */
  absorbLevel(cost: number): void {
    this.levelSum = this.levelSum * LEVEL_DECAY + cost
    this.levelW = this.levelW * LEVEL_DECAY + 1
    this.levelWindows++
  }

  /** Weekly / daily profile (winsorized cost) and level factor (raw cost): fed windows once they are confirmed normal (see KeyTracker). */
  absorb(t: number, cost: number, rawCost: number): void {
    const days = isWeekend(t) ? this.weekend : this.weekday
    // the profile learns the winsorized cost (a surge barely moves next week's hour), the level
    // factor the raw one (it is what recovers the baseline after a change that did not page)
    learnRatio(this.f, WEEK_RATIO, rawCost, this.week.expected(t))
    learnRatio(this.f, DAY_RATIO, rawCost, days.expected(t))
    this.week.absorb(t, cost)
    days.absorb(t, cost)
  }

  /**
   * Expected cost of the window starting at t: the weekly profile once it exists and its level
   * factor has been learned for RATIO_MIN_WINDOWS, else the day-kind profile; NaN without a day
   * of history of that kind. Each profile has its own level factor: the weekly one lags by a
   * week of growth, the daily one by a day.
   */
  expectedFromProfile(t: number): number {
    const w = this.week.expected(t)
    if (!Number.isNaN(w) && (this.f[WEEK_RATIO + 2] ?? 0) >= RATIO_MIN_WINDOWS) return w * ratioOf(this.f, WEEK_RATIO)
    const d = (isWeekend(t) ? this.weekend : this.weekday).expected(t)
    return Number.isNaN(d) ? NaN : d * ratioOf(this.f, DAY_RATIO)
  }

  /** Exponentially weighted level of cost per window (recent history). */
  get level(): number {
    return this.levelW > 0 ? this.levelSum / this.levelW : 0
  }

  recordResidual(z: number): void {
    this.residSum = this.residSum * RESID_DECAY + Math.min(z * z, 25)
    this.residW = this.residW * RESID_DECAY + 1
  }

  get dispersion(): number {
    return this.residW > 20 ? Math.max(1, this.residSum / this.residW) : 1
  }
}
