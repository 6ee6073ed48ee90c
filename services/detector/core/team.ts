/**
 * Team rollups (endpoint = model = null): member series' windows summed per window start and
 * finalized once event time is TEAM_FINALIZE_LAG_WINDOWS past it (or at flush). The rollup's
 * cost-per-request expectation is mix-adjusted: the sum over member windows of requests × that
 * series' baseline unit cost, so a traffic shift between cheap and pricey series is not a
 * unit-cost break.
 */
import type { AlertRecord } from '../../../schemas/alert.ts'
import type { WindowRecord } from '../../../schemas/window.ts'
import { rankDeployments, type MarkerRef } from './attribution.ts'
import { BudgetTracker } from './budget.ts'
import { KeyTracker, type KeyContext, type KeyWindow } from './key.ts'
import { MAX_GAP_FILL_WINDOWS, MAX_MARKERS_PER_TEAM } from './params.ts'

interface Acc extends KeyWindow {
  xc: number
  xv: number
  deps: Record<string, number>
}

export class TeamState {
  readonly name: string
  readonly key: KeyTracker
  readonly markers: MarkerRef[] = []
  readonly seriesCtx: KeyContext
  readonly teamCtx: KeyContext
  readonly budget: BudgetTracker | null
  /** member series with an open cost-per-request alert */
  openSeriesCpr = 0
  private readonly acc = new Map<number, Acc>()
  nextT: number | null = null
  lateWindows = 0

  constructor(name: string, seriesCtx: Omit<KeyContext, 'markers' | 'suppressCpr'>, monthlyBudgetUsd: number | undefined) {
    this.name = name
    this.key = new KeyTracker(name, null, null)
    this.seriesCtx = { ...seriesCtx, markers: this.markers, suppressCpr: false }
    this.teamCtx = { ...seriesCtx, markers: this.markers, suppressCpr: false }
    this.budget = monthlyBudgetUsd !== undefined && monthlyBudgetUsd > 0 ? new BudgetTracker(name, monthlyBudgetUsd, seriesCtx.windowMs) : null
  }

  addMarker(m: MarkerRef): void {
    this.markers.push(m)
    if (this.markers.length > MAX_MARKERS_PER_TEAM) this.markers.shift()
  }

  /** Adds a member series window (with that series' expectation) to its team minute. */
  add(t: number, w: WindowRecord, xc: number, xv: number): void {
    if (this.nextT !== null && t < this.nextT) {
      this.lateWindows++
      return
    }
    if (this.nextT === null) this.nextT = t
    let a = this.acc.get(t)
    if (!a) {
      a = { t, n: 0, c: 0, q: 0, i: 0, o: 0, k: 0, e: 0, deps: {}, xc: 0, xv: 0 }
      this.acc.set(t, a)
    }
    a.n += w.requests
    a.c += w.cost_usd
    a.q += w.cost_sq_sum
    a.i += w.input_tokens
    a.o += w.output_tokens
    a.k += w.cache_read_tokens
    a.e += w.errors
    a.xc += xc
    a.xv += xv
    const d = w.deployments
    for (const id in d) a.deps[id] = (a.deps[id] ?? 0) + (d[id] ?? 0)
  }

  /** Finalizes team minutes with start <= until, in order, zero-filling minutes without windows. */
  finalize(until: number, out: AlertRecord[]): void {
    const windowMs = this.teamCtx.windowMs
    while (this.nextT !== null && this.nextT <= until) {
      const t = this.nextT
      const nextData = this.acc.size === 0 ? until + windowMs : Math.min(...this.acc.keys())
      if ((nextData - t) / windowMs > MAX_GAP_FILL_WINDOWS) {
        // idle for long: skip ahead instead of zero-filling a long gap
        this.nextT = nextData
        this.key.restartEvidence()
        continue
      }
      const a = this.acc.get(t)
      if (a) this.acc.delete(t)
      const w: KeyWindow = a ?? { t, n: 0, c: 0, q: 0, i: 0, o: 0, k: 0, e: 0, deps: null, xc: 0, xv: 0 }
      this.teamCtx.suppressCpr = this.openSeriesCpr > 0
      this.key.process(w, this.teamCtx, out)
      if (this.budget) {
        const key = this.key
        const r = this.budget.step(t, w.c, this.teamCtx.resolveWindows, (startedAt) => rankDeployments(key.ring, key.sightings, this.markers, null, startedAt, t))
        if (r) out.push(r)
      }
      this.nextT = t + windowMs
    }
  }

  hasPending(): boolean {
    return this.acc.size > 0
  }
}
