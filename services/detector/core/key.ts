/**
 * Trend-break tracking for one key: a series (team, endpoint, model) or a team rollup
 * (endpoint = model = null). Per window: O(1) work plus a few bounded ring reads; the
 * change-point search and attribution scan the bounded ring only when an alert fires.
 */
import type { AlertRecord } from '../../../schemas/alert.ts'
import { DeploymentSightings, type MarkerRef } from './attribution.ts'
import { CostBaseline } from './baseline.ts'
import { newCusum, resetCusum, stepCusum, llr, type Cusum } from './cusum.ts'
import { catalogRates, type Rates } from '../../aggregator/pricing.ts'
import { CanaryCompare } from './canary.ts'
import { ShiftEvidence } from './glr.ts'
import {
  ABSORB_DELAY_WINDOWS,
  BASELINE_MIN_REQUESTS,
  BASELINE_MIN_WINDOWS,
  BURN_PERSIST_MS,
  BURN_PRE_PROFILE_TOLERANCE,
  ERROR_SHARE_FLOOR,
  ERROR_STORM_MIN_RISE,
  LLR_CAP_FRACTION,
  LLR_THRESHOLD,
  HOLD_MAX_MS,
  HOLD_Z,
  LEVEL_RATIO_HALF_LIFE_WINDOWS,
  RING_SIZE,
} from './params.ts'
import { BurnProfile } from './profile.ts'
import type { WindowTotals } from './baseline.ts'
import { COLS, NCOLS, WindowRing } from './ring.ts'
import { buildCanaryAlert, buildStormAlert, buildTrendAlert, updateOrResolve, type OpenAlert } from './trend-alert.ts'

const SHARE_DECAY = Math.pow(2, -1 / LEVEL_RATIO_HALF_LIFE_WINDOWS)
/** scratch row for a window being pushed into a ring (one per process: process() does not re-enter) */
const ROW = new Float64Array(NCOLS)

/** Requests and cost of one model in a window of an endpoint rollup. */
export interface ModelShare {
  n: number
  c: number
}

export interface KeyWindow extends WindowTotals {
  t: number
  deps: Record<string, number> | null
  /** series: cost and squared cost per deployment ID (absent in windows rebuilt from history) */
  depCost?: Record<string, number> | null
  depSq?: Record<string, number> | null
  /** endpoint rollups: requests and cost per model */
  models?: Record<string, ModelShare> | null
  /** team rollups: expected cost and its variance from the member series' baselines (mix-adjusted) */
  xc?: number
  xv?: number
  /** team rollups: expected burn (cost of the window) and its variance from the members' burn baselines */
  bx?: number
  bxv?: number
}

export interface KeyContext {
  windowMs: number
  minRequests: number
  resolveWindows: number
  thrCpr: number
  thrBurn: number
  markers: readonly MarkerRef[]
  /** team rollups: true while a member series has an open cost-per-request alert (the series page is the specific one) */
  suppressCpr: boolean
}

export class KeyTracker {
  readonly team: string
  readonly endpoint: string | null
  readonly model: string | null
  readonly ring = new WindowRing(RING_SIZE)
  readonly base = new CostBaseline()
  readonly burn = new BurnProfile()
  readonly sightings = new DeploymentSightings()
  /** series: direct comparison of deployment IDs serving the same minutes */
  readonly canary = new CanaryCompare()
  lastT = -Infinity
  private pending = 0
  /** cost-per-request evidence since every candidate change point */
  private readonly cprEvidence = new ShiftEvidence()
  /** start of pending cost-per-request evidence (windows from it on wait to join the baseline) */
  private cprHold = Infinity
  /** series: evidence that the error share rose (a retry storm), see stepErrors */
  private readonly errUp: Cusum = newCusum()
  private readonly burnUp: Cusum = newCusum()
  private readonly burnDown: Cusum = newCusum()
  /** this window's burn expectation and variance as the key's team sums them */
  burnForTeam = 0
  burnVarForTeam = 0
  /**
   * Series: the ring of its endpoint rollup (the endpoint across its models; requests and cost
   * per model per window), read when a burn-rate break fires to tell traffic that moved between
   * sibling series from traffic that changed. Null for rollups.
   */
  endpointRing: WindowRing | null = null
  /** Series: its usual share of the endpoint's requests (absorbed windows), and since when its traffic has been elsewhere. */
  private shareMean = NaN
  private movedSince = Infinity
  /** a gap [from, to) during which sibling series of the endpoint carried its traffic */
  private movedGap: [number, number] = [Infinity, -Infinity]
  cprAlert: OpenAlert | null = null
  burnAlert: OpenAlert | null = null

  constructor(team: string, endpoint: string | null, model: string | null) {
    this.team = team
    this.endpoint = endpoint
    this.model = model
  }

  private rates: Rates | null | undefined

  /** The catalog's per-token rates of this series' model (null: unknown model, or a rollup). */
  catalogRates(): Rates | null {
    if (this.rates === undefined) this.rates = this.model === null ? null : catalogRates(this.model)
    return this.rates
  }

  get isTeam(): boolean {
    return this.endpoint === null
  }

  /** An endpoint across its models: pages cost per request only when the model mix explains it; no burn-rate signal of its own. */
  get isEndpoint(): boolean {
    return this.endpoint !== null && this.model === null
  }

  /** Cost-per-request baseline ready (series mode). */
  get cprReady(): boolean {
    return this.base.windows >= BASELINE_MIN_WINDOWS && this.base.requests >= BASELINE_MIN_REQUESTS
  }

  /** Expected cost and variance of a window of n requests under this series' baseline (for its team rollup). */
  expectation(n: number, c: number, q: number): { xc: number; xv: number } {
    if (this.cprReady) return { xc: n * this.base.unitCost, xv: n * this.base.unitVariance * this.base.dispersion }
    const m = n > 0 ? c / n : 0
    return { xc: c, xv: n > 0 ? Math.max(q - n * m * m, 0) : 0 }
  }

  /** Forgets pending evidence (after a long gap). */
  restartEvidence(): void {
    this.cprEvidence.reset()
    this.cprHold = Infinity
    this.canary.restart()
    resetCusum(this.errUp)
    resetCusum(this.burnUp)
    resetCusum(this.burnDown)
  }

  process(w: KeyWindow, ctx: KeyContext, out: AlertRecord[]): void {
    this.lastT = w.t
    const base = this.base
    // cost-per-request expectation
    let xc = 0
    let xv = 0
    let cprOk = false
    if (this.isTeam) {
      xc = w.xc ?? 0
      xv = w.xv ?? 0
      cprOk = xc > 0 && base.windows >= BASELINE_MIN_WINDOWS
    } else if (this.cprReady) {
      xc = w.n * base.unitCost
      xv = w.n * base.unitVariance
      cprOk = xc > 0
    }
    // burn-rate expectation: a team's is the sum of its members' (a member without a weekly or
    // daily profile counts at its actual cost), so a new endpoint or a member's own Monday is
    // not a team break
    const mu = base.unitCost
    let be: number
    let bv = 0
    let burnTolerance = 1
    let burnOk: boolean
    if (this.isTeam) {
      be = w.bx ?? 0
      bv = w.bxv ?? 0
      burnOk = bv > 0 && be > 0 && base.windows >= BASELINE_MIN_WINDOWS
    } else {
      be = this.burn.expectedFromProfile(w.t)
      if (Number.isNaN(be)) {
        be = this.burn.levelWindows >= BASELINE_MIN_WINDOWS ? this.burn.level : NaN
        burnTolerance = BURN_PRE_PROFILE_TOLERANCE
      }
      burnOk = !Number.isNaN(be) && mu > 0 && this.cprReadyForBurn()
      if (burnOk) {
        be = Math.max(be, mu)
        bv = (be / mu) * (base.unitVariance + mu * mu)
      }
    }
    this.burnForTeam = burnOk && burnTolerance === 1 ? be : w.c
    this.burnVarForTeam = burnOk && burnTolerance === 1 ? bv : 0
    const row = ROW
    row[COLS.t] = w.t
    row[COLS.n] = w.n
    row[COLS.c] = w.c
    row[COLS.q] = w.q
    row[COLS.i] = w.i
    row[COLS.o] = w.o
    row[COLS.k] = w.k
    row[COLS.e] = w.e
    row[COLS.xc] = xc
    row[COLS.xv] = xv
    row[COLS.bc] = burnOk ? be : 0
    row[COLS.bv] = bv
    row[COLS.bt] = ctx.thrBurn * burnTolerance
    row[COLS.kw] = w.kw ?? 0
    row[COLS.cu] = w.cu ?? 0
    row[COLS.cr] = w.cr ?? 0
    row[COLS.cw] = w.cw ?? 0
    row[COLS.co] = w.co ?? 0
    row[COLS.r] = w.r ?? 0
    this.ring.push(row, w.deps, w.models ?? null)
    this.pending = Math.min(this.pending + 1, this.ring.size)
    this.sightings.record(w.deps, w.t)
    if (!this.isTeam && !this.isEndpoint) this.canary.push(w.t, ctx.windowMs, w.deps, w.depCost, w.depSq, base.unitCost, this.cprReady ? base.unitVariance : 0)
    if (!this.burnAlert) this.burn.absorbLevel(w.c)

    // cost per request
    if (this.cprAlert) {
      const r = updateOrResolve(this, this.cprAlert, ctx, w.t, w.n > 0)
      if (r) out.push(r)
      if (r?.status === 'resolved') this.closeAlert('cpr')
    } else if (cprOk && !ctx.suppressCpr) {
      const ev = this.cprEvidence
      ev.push(w.t, w.n, w.c, xc, xv)
      const { hit, strongest } = ev.scan(ctx.thrCpr, base.dispersion, this.isTeam ? 0 : base.levelRelVar, base.skew)
      this.cprHold = strongest !== null && Math.abs(strongest.z) >= HOLD_Z && w.t - strongest.start <= HOLD_MAX_MS ? strongest.start : Infinity
      // a retry storm first: failed calls are cheaper, so the cost per call falls while each
      // successful call costs more (the failures and their retries); that is a break, not a saving
      let a = this.stepErrors(w) ? buildStormAlert(this, ctx, this.errUp.start, w.t) : null
      if (!a && hit && !(hit.dir < 0 && this.errUp.s > 0)) a = buildTrendAlert(this, ctx, 'cost_per_request', hit.dir, hit.start, w.t)
      if (!a && !this.isTeam && !this.isEndpoint) {
        const c = this.canary.check(ctx.thrCpr, base.skew, base.unitVariance)
        if (c) a = buildCanaryAlert(this, ctx, c, w.t)
      }
      if (a) {
        this.cprAlert = a.open
        out.push(a.record)
        this.restartEvidence()
      }
    } else if (ctx.suppressCpr) {
      this.cprEvidence.reset()
      this.cprHold = Infinity
    } else {
      this.cprEvidence.push(w.t, 0, 0, 0, 0)
    }

    // burn rate
    if (this.burnAlert) {
      const r = updateOrResolve(this, this.burnAlert, ctx, w.t, true)
      if (r) out.push(r)
      if (r?.status === 'resolved') this.closeAlert('burn')
    } else if (burnOk && (!this.cprAlert || this.cprAlert.dir < 0) && !this.isEndpoint) {
      // a cost-per-request notice (cheaper calls) does not hide a rise of the spend: a retry
      // storm's failed calls are cheaper while their retries raise the burn
      const se = Math.sqrt(bv * this.burn.dispersion) / be
      const rel = w.c / be - 1
      const thr = ctx.thrBurn * burnTolerance
      const up = stepCusum(this.burnUp, w.t, llr(rel, se, thr, 1))
      const down = stepCusum(this.burnDown, w.t, llr(rel, se, thr, -1))
      if (up || down) {
        const cus = up ? this.burnUp : this.burnDown
        if (w.t - cus.start >= BURN_PERSIST_MS - ctx.windowMs) {
          const a = buildTrendAlert(this, ctx, 'burn_rate', up ? 1 : -1, cus.start, w.t)
          if (a) {
            this.burnAlert = a.open
            out.push(a.record)
            this.restartEvidence()
          } else {
            // explained by a unit-cost change (the cost-per-request test owns it) or too small
            resetCusum(cus)
          }
        }
      }
    }

    this.absorbReady(ctx.windowMs)
  }

  /**
   * One window of the error-share CUSUM (params.ts, ERROR_STORM_MIN_RISE): true while it is over
   * its threshold. Windows without requests carry no evidence either way.
   */
  private stepErrors(w: KeyWindow): boolean {
    const b = this.base
    if (!(b.n > 0) || w.n <= 0 || this.isTeam || this.isEndpoint) return false
    const p0 = Math.min(0.5, Math.max(ERROR_SHARE_FLOOR, b.e / b.n))
    const p1 = Math.min(0.99, Math.max(2 * p0, p0 + ERROR_STORM_MIN_RISE))
    const e = Math.min(w.e, w.n)
    const raw = e * Math.log(p1 / p0) + (w.n - e) * Math.log((1 - p1) / (1 - p0))
    return stepCusum(this.errUp, w.t, Math.max(-LLR_THRESHOLD, Math.min(LLR_THRESHOLD * LLR_CAP_FRACTION, raw)))
  }

  /** Requests of this series' endpoint (all models) in the window starting at t, or null when not (yet) in the endpoint ring. */
  private endpointRequestsAt(t: number, windowMs: number): number | null {
    const r = this.endpointRing
    if (!r || r.size === 0) return null
    const idx = r.size - 1 - Math.round((r.get(r.size - 1, COLS.t) - t) / windowMs)
    if (idx < 0 || idx >= r.size || r.get(idx, COLS.t) !== t) return null
    return r.get(idx, COLS.n)
  }

  /**
   * Whether a window of n requests at t may teach the burn profile. Not while the series' traffic
   * has moved to a sibling series of its endpoint (a model swap, a router change): its share of
   * the endpoint's requests fell below half its usual share, beyond binomial noise (z >= 3: at
   * 3 requests a minute a two-model split swings by chance), for less than HOLD_MAX_MS. Its
   * (A gap in the series' windows while a sibling delivered counts as moved: see markMoved.) Its
   * profile would otherwise learn the hours its traffic spent elsewhere as its normal and page
   * burn rate when the traffic comes back; past HOLD_MAX_MS the move is the new normal.
   */
  markMoved(from: number, to: number): void {
    this.movedGap = [from, to]
  }

  private burnMayLearn(t: number, n: number, windowMs: number): boolean {
    if (t >= this.movedGap[0] && t < this.movedGap[1]) {
      if (this.movedSince === Infinity) this.movedSince = t
      return t - this.movedSince >= HOLD_MAX_MS
    }
    const all = this.endpointRequestsAt(t, windowMs)
    if (all === null || all <= 0) return true
    const s = n / all
    const p = Math.min(0.99, Math.max(0.01, this.shareMean))
    const moved = !Number.isNaN(this.shareMean) && s < this.shareMean / 2 && ((p - s) * all) / Math.sqrt(all * p * (1 - p)) >= 3
    if (!moved) {
      this.movedSince = Infinity
      // the usual share: exponentially weighted like the burn level factor
      this.shareMean = Number.isNaN(this.shareMean) ? s : this.shareMean * SHARE_DECAY + s * (1 - SHARE_DECAY)
      return true
    }
    if (this.movedSince === Infinity) this.movedSince = t
    return t - this.movedSince >= HOLD_MAX_MS
  }

  private cprReadyForBurn(): boolean {
    return this.base.windows >= BASELINE_MIN_WINDOWS
  }

  /** Standardized residuals feed the overdispersion estimates; recorded at absorption time. */
  private absorbReady(windowMs: number): void {
    if (this.cprAlert || this.burnAlert) return
    const ring = this.ring
    // Windows carrying pending unit-cost evidence wait (at most HOLD_MAX_MS: a change that does
    // not page joins the baseline rather than pinning it). Burn-rate evidence does not hold the
    // burn baseline back: the profile only predicts later days, and a stale level would turn the
    // daily ramp into a break; volume breaks are confirmed by BURN_PERSIST_MS instead.
    const block = this.cprHold
    while (this.pending > ABSORB_DELAY_WINDOWS) {
      const idx = ring.size - this.pending
      const t = ring.get(idx, COLS.t)
      if (t >= block) break
      const n = ring.get(idx, COLS.n)
      const c = ring.get(idx, COLS.c)
      const xc = ring.get(idx, COLS.xc)
      const xv = ring.get(idx, COLS.xv)
      if (n > 0 && xc > 0 && xv > 0) this.base.recordResidual((c - xc) / Math.sqrt(xv), n)
      const learnBurn = this.endpointRing === null || this.burnMayLearn(t, n, windowMs)
      const bc = ring.get(idx, COLS.bc)
      const bv = ring.get(idx, COLS.bv)
      if (learnBurn && bc > 0 && bv > 0) this.burn.recordResidual((c - bc) / Math.sqrt(bv))
      this.base.absorb(ring.totals(idx, idx + 1))
      // the daily profile learns a winsorized cost (within the tolerance of what was expected),
      // so a short surge or outage barely moves tomorrow's expectation for that hour
      const tol = ring.get(idx, COLS.bt)
      if (learnBurn) this.burn.absorb(t, bc > 0 ? Math.min(Math.max(c, bc * (1 - tol)), bc * (1 + tol)) : c, c)
      this.pending--
    }
  }

  private closeAlert(which: 'cpr' | 'burn'): void {
    if (which === 'cpr') this.cprAlert = null
    else this.burnAlert = null
    this.restartEvidence()
    // windows of the alert period never join the baseline
    if (!this.cprAlert && !this.burnAlert) this.pending = 0
  }
}
