/**
 * Burn-rate baseline of one key. Before a day of history: an exponentially weighted level of
 * cost per window (the caller widens the tolerance). After: a same-hour-of-day profile (24
 * buckets of mean cost per window, days folded with PROFILE_DAY_WEIGHT on the newest day),
 * linearly interpolated between bucket centres so a usual daily peak is expected, not a break.
 */
import { BURN_LEVEL_HALF_LIFE_WINDOWS, PROFILE_BUCKETS, PROFILE_DAY_WEIGHT } from './params.ts'

const DAY_MS = 86_400_000
const BUCKET_MS = DAY_MS / PROFILE_BUCKETS
const LEVEL_DECAY = Math.pow(2, -1 / BURN_LEVEL_HALF_LIFE_WINDOWS)
const RESID_DECAY = Math.pow(2, -1 / 240)

export class BurnProfile {
  private readonly hist = new Float64Array(PROFILE_BUCKETS)
  private readonly histDays = new Uint16Array(PROFILE_BUCKETS)
  private readonly curDay = new Float64Array(PROFILE_BUCKETS).fill(-1)
  private readonly curSum = new Float64Array(PROFILE_BUCKETS)
  private readonly curCount = new Float64Array(PROFILE_BUCKETS)
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

  /** Daily profile: fed windows once they are confirmed normal (see KeyTracker). */
  absorb(t: number, cost: number): void {
    const day = Math.floor(t / DAY_MS)
    const b = Math.floor((t - day * DAY_MS) / BUCKET_MS)
    if (this.curDay[b] !== day) {
      this.fold(b)
      this.curDay[b] = day
      this.curSum[b] = 0
      this.curCount[b] = 0
    }
    this.curSum[b] = (this.curSum[b] ?? 0) + cost
    this.curCount[b] = (this.curCount[b] ?? 0) + 1
  }

  private fold(b: number): void {
    const n = this.curCount[b] ?? 0
    if (n < 1) return
    const mean = (this.curSum[b] ?? 0) / n
    const days = this.histDays[b] ?? 0
    this.hist[b] = days === 0 ? mean : (this.hist[b] ?? 0) * (1 - PROFILE_DAY_WEIGHT) + mean * PROFILE_DAY_WEIGHT
    this.histDays[b] = Math.min(days + 1, 65535)
  }

  /** Mean cost per window of bucket b from days before `day`, or NaN when none. */
  private bucketMean(b: number, day: number): number {
    const days = this.histDays[b] ?? 0
    const cd = this.curDay[b] ?? -1
    const n = this.curCount[b] ?? 0
    if (cd >= 0 && cd < day && n > 0) {
      const mean = (this.curSum[b] ?? 0) / n
      return days === 0 ? mean : (this.hist[b] ?? 0) * (1 - PROFILE_DAY_WEIGHT) + mean * PROFILE_DAY_WEIGHT
    }
    return days > 0 ? (this.hist[b] ?? 0) : NaN
  }

  /** Expected cost of the window starting at t from the daily profile, or NaN without a day of history. */
  expectedFromProfile(t: number): number {
    const day = Math.floor(t / DAY_MS)
    const pos = (t - day * DAY_MS) / BUCKET_MS - 0.5
    const b0 = Math.floor(pos)
    const frac = pos - b0
    const i0 = (b0 + PROFILE_BUCKETS) % PROFILE_BUCKETS
    const i1 = (b0 + 1) % PROFILE_BUCKETS
    const m0 = this.bucketMean(i0, day)
    const m1 = this.bucketMean(i1, day)
    if (Number.isNaN(m0) || Number.isNaN(m1)) return NaN
    return m0 * (1 - frac) + m1 * frac
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
