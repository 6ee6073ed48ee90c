/**
 * Team rollups (endpoint = model = null): member series' windows summed per window start. The
 * rollup's cost-per-request expectation is mix-adjusted: the sum over member windows of
 * requests × that series' baseline unit cost, so a traffic shift between cheap and pricey
 * series is not a unit-cost break.
 *
 * Finalization is driven by the members' own event time, not by the order in which windows of
 * different series arrive (see TEAM_FINALIZE_LAG_WINDOWS in params.ts): a team minute t is
 * final once every member has delivered a window at or after t + lag, or once the team (or the
 * whole input) is TEAM_MAX_SKEW_WINDOWS + lag past it. Whether a member has an open
 * cost-per-request alert (which holds the team's own unit-cost test back) is read from the
 * members' alert open/close event times as of t + lag.
 */
import type { AlertRecord } from '../../../schemas/alert.ts'
import type { WindowRecord } from '../../../schemas/window.ts'
import { attribute, type MarkerRef } from './attribution.ts'
import { BudgetTracker } from './budget.ts'
import { KeyTracker, type KeyContext, type KeyWindow, type ModelShare } from './key.ts'
import { ENDPOINT_MAX_SKEW_WINDOWS, MAX_GAP_FILL_WINDOWS, MAX_MARKERS_PER_TEAM, MEMBER_FORGET_WINDOWS, TEAM_FINALIZE_LAG_WINDOWS, TEAM_MAX_SKEW_WINDOWS } from './params.ts'

interface Acc extends KeyWindow {
  xc: number
  xv: number
  bx: number
  bxv: number
  deps: Record<string, number>
  models: Record<string, ModelShare> | null
}

/** A member series as its team sees it. */
export interface Member {
  /** start of the member's newest window (-Infinity before the first) */
  lastT: number
  /** the member's windows count in the rollup from this window start on */
  joinAt: number
  /** position in the team's progress heap (-1: not in it) */
  heapIdx: number
  /** the member's open cost-per-request alert counts for the team (opened at or after joinAt) */
  cprCounted: boolean
}

export function newMember(): Member {
  return { lastT: -Infinity, joinAt: Infinity, heapIdx: -1, cprCounted: false }
}

/**
 * A rollup of member series summed per window start: a team (endpoint = model = null, cost per
 * request mix-adjusted, with budget) or an endpoint across its models (`endpoint` given: its own
 * cost-per-request baseline, not mix-adjusted, so traffic moved to a pricier model is a break of
 * the endpoint; it shares its team's deployment markers).
 */
export class TeamState {
  readonly name: string
  readonly key: KeyTracker
  /** deployment markers, sorted by time (then id): arrival order does not matter */
  readonly markers: MarkerRef[]
  readonly seriesCtx: KeyContext
  readonly teamCtx: KeyContext
  readonly budget: BudgetTracker | null
  private readonly windowMs: number
  private readonly acc = new Map<number, Acc>()
  /** next team minute to finalize (null until the first one) */
  nextT: number | null = null
  /** newest window start of any member */
  maxT = -Infinity
  /** start of the newest finalized minute that had member windows */
  private lastDataT = -Infinity
  lateWindows = 0
  /** min-heap of members by lastT (members silent for MEMBER_FORGET_WINDOWS are dropped) */
  private readonly heap: Member[] = []
  /** member cost-per-request alert opened (+1) / closed (-1) at window start t, sorted by t */
  private readonly cprEvents: { t: number; d: 1 | -1 }[] = []
  private openSeriesCpr = 0
  /** how long a quiet member holds the rollup back, and how long after its first window a member joins */
  readonly maxSkewWindows: number
  private readonly joinDelayWindows: number

  constructor(name: string, seriesCtx: Omit<KeyContext, 'markers' | 'suppressCpr'>, monthlyBudgetUsd: number | undefined, endpoint?: { name: string; markers: MarkerRef[] }) {
    this.name = name
    this.windowMs = seriesCtx.windowMs
    this.markers = endpoint?.markers ?? []
    // an endpoint rollup must see a new model from its first window (a model swap starts there)
    // and cannot wait hours for a retired one: see ENDPOINT_MAX_SKEW_WINDOWS
    this.maxSkewWindows = endpoint ? ENDPOINT_MAX_SKEW_WINDOWS : TEAM_MAX_SKEW_WINDOWS
    this.joinDelayWindows = endpoint ? 0 : TEAM_MAX_SKEW_WINDOWS
    this.key = new KeyTracker(name, endpoint?.name ?? null, null)
    this.seriesCtx = { ...seriesCtx, markers: this.markers, suppressCpr: false }
    this.teamCtx = { ...seriesCtx, markers: this.markers, suppressCpr: false }
    this.budget = monthlyBudgetUsd !== undefined && monthlyBudgetUsd > 0 ? new BudgetTracker(name, monthlyBudgetUsd, seriesCtx.windowMs) : null
  }

  addMarker(m: MarkerRef): void {
    const ms = this.markers
    const before = (a: MarkerRef, b: MarkerRef): boolean => a.t < b.t || (a.t === b.t && (a.id < b.id || (a.id === b.id && (a.endpoint ?? '') < (b.endpoint ?? ''))))
    let i = ms.length
    while (i > 0 && before(m, ms[i - 1] as MarkerRef)) i--
    const prev = ms[i - 1]
    if (prev && prev.t === m.t && prev.id === m.id && prev.endpoint === m.endpoint) return // redelivered
    ms.splice(i, 0, m)
    // bounded: the oldest (by time) go first
    if (ms.length > MAX_MARKERS_PER_TEAM) ms.shift()
  }

  /**
   * A member delivered its window at t (after processing it). New members, and members back
   * after more than MEMBER_FORGET_WINDOWS, join the rollup TEAM_MAX_SKEW_WINDOWS later.
   */
  memberWindow(m: Member, t: number): void {
    const w = this.windowMs
    if (!Number.isFinite(m.lastT) || t - m.lastT > MEMBER_FORGET_WINDOWS * w) m.joinAt = t + this.joinDelayWindows * w
    m.lastT = t
    if (m.heapIdx < 0) this.heapPush(m)
    else this.siftDown(m.heapIdx)
    if (t > this.maxT) this.maxT = t
  }

  /** A member's cost-per-request alert opened (d = 1) or closed (d = -1) with its window at t. */
  memberCpr(m: Member, t: number, d: 1 | -1): void {
    if (d > 0) {
      if (t < m.joinAt) return
      m.cprCounted = true
    } else {
      if (!m.cprCounted) return
      m.cprCounted = false
    }
    const ev = this.cprEvents
    let i = ev.length
    while (i > 0 && (ev[i - 1] as { t: number }).t > t) i--
    ev.splice(i, 0, { t, d })
  }

  /**
   * Adds a member series window (with that series' expectations) to its team minute; `w` null:
   * a minute without requests of a member (its burn expectation still counts).
   */
  add(m: Member, t: number, w: WindowRecord | null, x: { xc: number; xv: number; bx: number; bxv: number }): void {
    if (t < m.joinAt) return
    if (this.nextT !== null && t < this.nextT) {
      // only when a series lags another by more than TEAM_MAX_SKEW_WINDOWS
      this.lateWindows++
      return
    }
    let a = this.acc.get(t)
    if (!a) {
      a = { t, n: 0, c: 0, q: 0, i: 0, o: 0, k: 0, e: 0, kw: 0, cu: 0, cr: 0, cw: 0, co: 0, r: 0, deps: {}, xc: 0, xv: 0, bx: 0, bxv: 0, models: this.key.endpoint === null ? null : {} }
      this.acc.set(t, a)
    }
    a.bx += x.bx
    a.bxv += x.bxv
    if (w === null) return
    const { xc, xv } = x
    a.n += w.requests
    a.c += w.cost_usd
    a.q += w.cost_sq_sum
    a.i += w.input_tokens
    a.o += w.output_tokens
    a.k += w.cache_read_tokens
    a.e += w.errors
    a.kw = (a.kw ?? 0) + w.cache_write_tokens
    a.cu = (a.cu ?? 0) + (w.cost_input_usd ?? 0)
    a.cr = (a.cr ?? 0) + (w.cost_cache_read_usd ?? 0)
    a.cw = (a.cw ?? 0) + (w.cost_cache_write_usd ?? 0)
    a.co = (a.co ?? 0) + (w.cost_output_usd ?? 0)
    a.r = (a.r ?? 0) + (w.retries ?? 0)
    a.xc += xc
    a.xv += xv
    const d = w.deployments
    for (const id in d) a.deps[id] = (a.deps[id] ?? 0) + (d[id] ?? 0)
    if (a.models) {
      const ms = a.models[w.model] ?? (a.models[w.model] = { n: 0, c: 0 })
      ms.n += w.requests
      ms.c += w.cost_usd
    }
  }

  /**
   * The newest team minute that is final given the members' progress alone: every member past
   * it by the lag, or the team's newest window past it by the skew bound plus the lag.
   */
  readyUntil(): number {
    const w = this.windowMs
    const forgetBefore = this.maxT - (MEMBER_FORGET_WINDOWS + this.maxSkewWindows) * w
    let top = this.heap[0]
    while (top && top.lastT < forgetBefore) {
      this.heapPopTop()
      top = this.heap[0]
    }
    const byMembers = top ? top.lastT - TEAM_FINALIZE_LAG_WINDOWS * w : -Infinity
    return Math.max(byMembers, this.maxT - (this.maxSkewWindows + TEAM_FINALIZE_LAG_WINDOWS) * w)
  }

  /**
   * Finalizes team minutes with start <= until, in order. Minutes without member windows are
   * zero-filled for up to MAX_GAP_FILL_WINDOWS after the last minute with data; past that the
   * team is idle (skipped) and restarts its evidence when data resumes.
   */
  finalize(until: number, out: AlertRecord[]): void {
    const windowMs = this.windowMs
    if (this.nextT === null) {
      let first = Infinity
      for (const t of this.acc.keys()) if (t < first) first = t
      if (first > until) return
      this.nextT = first
    }
    const lag = TEAM_FINALIZE_LAG_WINDOWS * windowMs
    while (this.nextT <= until) {
      const t: number = this.nextT
      const a = this.acc.get(t)
      if (!a && t - this.lastDataT > MAX_GAP_FILL_WINDOWS * windowMs) {
        // idle for long: skip to the next minute with data (or past `until`)
        let next = until + windowMs
        for (const k of this.acc.keys()) if (k < next) next = k
        this.nextT = next
        continue
      }
      if (a) {
        this.acc.delete(t)
        if (t - this.lastDataT > (MAX_GAP_FILL_WINDOWS + 1) * windowMs && Number.isFinite(this.lastDataT)) this.key.restartEvidence()
        this.lastDataT = t
      }
      const w: KeyWindow = a ?? { t, n: 0, c: 0, q: 0, i: 0, o: 0, k: 0, e: 0, deps: null, xc: 0, xv: 0, bx: 0, bxv: 0, models: null }
      this.applyCprEvents(t + lag)
      this.teamCtx.suppressCpr = this.openSeriesCpr > 0
      this.key.process(w, this.teamCtx, out)
      if (this.budget) {
        const key = this.key
        const r = this.budget.step(t, w.c, this.teamCtx.resolveWindows, (startedAt) => attribute(key.ring, key.sightings, this.markers, null, startedAt, t).ids)
        if (r) out.push(r)
      }
      this.nextT = t + windowMs
    }
  }

  /** Whether a member other than m delivered a window after t (an endpoint's traffic went on in another model). */
  othersActiveAfter(m: Member, t: number): boolean {
    for (const o of this.heap) if (o !== m && o.lastT > t) return true
    return false
  }

  hasPending(): boolean {
    return this.acc.size > 0
  }

  private applyCprEvents(through: number): void {
    const ev = this.cprEvents
    let n = 0
    while (n < ev.length && (ev[n] as { t: number }).t <= through) {
      this.openSeriesCpr += (ev[n] as { d: number }).d
      n++
    }
    if (n > 0) ev.splice(0, n)
  }

  // --- min-heap of members by lastT (lastT only grows: updates sift down) ---

  private heapPush(m: Member): void {
    const h = this.heap
    m.heapIdx = h.length
    h.push(m)
    let i = m.heapIdx
    while (i > 0) {
      const p = (i - 1) >> 1
      const pm = h[p] as Member
      if (pm.lastT <= m.lastT) break
      h[i] = pm
      pm.heapIdx = i
      i = p
    }
    h[i] = m
    m.heapIdx = i
  }

  private heapPopTop(): void {
    const h = this.heap
    const top = h[0] as Member
    top.heapIdx = -1
    const last = h.pop() as Member
    if (h.length === 0) return
    h[0] = last
    last.heapIdx = 0
    this.siftDown(0)
  }

  private siftDown(i: number): void {
    const h = this.heap
    const m = h[i] as Member
    for (;;) {
      const l = 2 * i + 1
      if (l >= h.length) break
      const r = l + 1
      const c = r < h.length && (h[r] as Member).lastT < (h[l] as Member).lastT ? r : l
      const cm = h[c] as Member
      if (cm.lastT >= m.lastT) break
      h[i] = cm
      cm.heapIdx = i
      i = c
    }
    h[i] = m
    m.heapIdx = i
  }
}
