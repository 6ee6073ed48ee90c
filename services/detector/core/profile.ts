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
  private readonly hist: Float32Array
  private readonly histCycles: Uint8Array
  /** the two most recent buckets absorbed into, not yet folded: [bucket, cycle, sum, count] × 2, newest first */
  private readonly open = new Float64Array([-1, -1, 0, 0, -1, -1, 0, 0])
  readonly buckets: number
  private readonly cycleMs: number

  constructor(cycleMs: number) {
    this.cycleMs = cycleMs
    this.buckets = Math.round(cycleMs / BUCKET_MS)
    this.hist = new Float32Array(this.buckets)
    this.histCycles = new Uint8Array(this.buckets)
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
    if (o[0] !== b || o[1] !== cycle) {
      if (o[4] === b && o[5] === cycle) {
        // back to the older open bucket (cannot happen in time order; kept exact regardless)
        o.copyWithin(0, 4, 8)
      } else {
        this.fold(4)
        o.copyWithin(4, 0, 4)
      }
      o[0] = b
      o[1] = cycle
      o[2] = 0
      o[3] = 0
    }
    o[2] = (o[2] ?? 0) + cost
    o[3] = (o[3] ?? 0) + 1
  }

  private fold(at: number): void {
    const o = this.open
    const b = o[at] ?? -1
    const n = o[at + 3] ?? 0
    if (b < 0 || n < 1) return
    const mean = (o[at + 2] ?? 0) / n
    const k = this.histCycles[b] ?? 0
    this.hist[b] = k === 0 ? mean : (this.hist[b] ?? 0) * (1 - PROFILE_DAY_WEIGHT) + mean * PROFILE_DAY_WEIGHT
    this.histCycles[b] = Math.min(k + 1, 255)
  }

  /** Mean cost per window of bucket b from cycles before `cycle`, or NaN when none. */
  private bucketMean(b: number, cycle: number): number {
    const k = this.histCycles[b] ?? 0
    const o = this.open
    for (const at of [0, 4]) {
      if (o[at] !== b) continue
      const cc = o[at + 1] ?? -1
      const n = o[at + 3] ?? 0
      // an open bucket of an earlier cycle counts as folded
      if (cc >= 0 && cc < cycle && n > 0) {
        const mean = (o[at + 2] ?? 0) / n
        return k === 0 ? mean : (this.hist[b] ?? 0) * (1 - PROFILE_DAY_WEIGHT) + mean * PROFILE_DAY_WEIGHT
      }
    }
    return k > 0 ? (this.hist[b] ?? 0) : NaN
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

function learnRatio(r: Float64Array, cost: number, expected: number): void {
  if (!(expected > 0)) return
  r[0] = (r[0] ?? 0) * RATIO_DECAY + cost
  r[1] = (r[1] ?? 0) * RATIO_DECAY + expected
  r[2] = (r[2] ?? 0) + 1
}

/** Level factor: recent cost against what the profile expected (1 until known), within [0.2, 5]. */
function ratioOf(r: Float64Array): number {
  const den = r[1] ?? 0
  return den > 0 ? Math.min(5, Math.max(0.2, (r[0] ?? 0) / den)) : 1
}

function isWeekend(t: number): boolean {
  const dow = (Math.floor(t / DAY_MS) + 4) % 7 // 0 = Sunday
  return dow === 0 || dow === 6
}

export class BurnProfile {
  private readonly week = new CycleBuckets(WEEK_MS)
  private readonly weekday = new CycleBuckets(DAY_MS)
  private readonly weekend = new CycleBuckets(DAY_MS)
  private levelSum = 0
  private levelW = 0
  levelWindows = 0
  /** level factors against the weekly and the day-kind profile: [num, den, windows] each */
  private readonly weekRatio = new Float64Array(3)
  private readonly dayRatio = new Float64Array(3)
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
    learnRatio(this.weekRatio, rawCost, this.week.expected(t))
    learnRatio(this.dayRatio, rawCost, days.expected(t))
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
    if (!Number.isNaN(w) && (this.weekRatio[2] ?? 0) >= RATIO_MIN_WINDOWS) return w * ratioOf(this.weekRatio)
    const d = (isWeekend(t) ? this.weekend : this.weekday).expected(t)
    return Number.isNaN(d) ? NaN : d * ratioOf(this.dayRatio)
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
