/**
 * Cost-per-request and burn-rate alerts of one key: building the `firing` record (change point,
 * post-change level, attribution, drivers, impact) and the open alert's `updated` / `resolved`
 * transitions.
 */
import type { AlertRecord } from '../../../schemas/alert.ts'
import { attribute } from './attribution.ts'
import { catalogPrices, computeDrivers, estimatePrices } from './drivers.ts'
import type { WindowTotals } from './baseline.ts'
import { alertId } from './hash.ts'
import type { KeyContext, KeyTracker } from './key.ts'
import type { CanaryHit } from './canary.ts'
import { BURN_PERSIST_MS, CHANGE_POINT_SEARCH_BACK, HOLD_MAX_MS, ENDPOINT_MAX_SKEW_WINDOWS, HOURS_PER_MONTH, MAX_DEPLOYMENT_IDS_IN_ALERT, TEAM_FINALIZE_LAG_WINDOWS } from './params.ts'
import { COLS, type WindowRing } from './ring.ts'
import { toIso } from './time.ts'

type Signal = 'cost_per_request' | 'burn_rate'

export interface OpenAlert {
  id: string
  signal: Signal
  dir: 1 | -1
  thr: number
  startedAt: number
  /** where the shifted level begins (the change point; startedAt may be earlier: a canary's first sight) */
  levelFrom?: number
  reportedRel: number
  baseline: number
  windowsSince: number
  okStreak: number
  deploymentIds: string[]
  drivers: AlertRecord['drivers']
  /** requests per window since the change point (cost-per-request monthly impact) */
  volume: number
  /** paged as a retry storm: the cost per successful call before it (the level it resolves against) */
  storm?: { baseline: number }
  /** paged by the canary comparison: while both IDs still serve, the diluted level does not resolve it */
  canary?: { id: string; olderId: string; share: number; rel: number }
}

const HOUR_MS = 3_600_000

function cols(signal: Signal): { exp: 8 | 10; vr: 9 | 11 } {
  return signal === 'cost_per_request' ? { exp: COLS.xc, vr: COLS.xv } : { exp: COLS.bc, vr: COLS.bv }
}

/** Maximum-likelihood change point (known pre-change level, unknown post-change level) over [from, size). */
function changePointIndex(ring: WindowRing, from: number, signal: Signal, dir: 1 | -1): number {
  const { exp, vr } = cols(signal)
  let d = 0
  let v = 0
  let best = ring.size - 1
  let bestScore = -1
  for (let i = ring.size - 1; i >= from; i--) {
    const e = ring.get(i, exp)
    if (e <= 0) continue
    d += ring.get(i, COLS.c) - e
    v += ring.get(i, vr)
    if (v <= 0) continue
    const score = dir * d > 0 ? (d * d) / v : 0
    if (score >= bestScore) {
      bestScore = score
      best = i
    }
  }
  return best
}

/**
 * The part of the change of cost per request (in percentage points) explained by requests moving
 * between models: Σ_m (share after − share before) × unit cost of m (the mean of before and after
 * when it served on both sides, else the side it served), over the unit cost before. Before = the ring's
 * windows before index k, after = from k on; null without requests on both sides.
 */
function modelMixPp(ring: WindowRing, k: number): number | null {
  const before = new Map<string, { n: number; c: number }>()
  const after = new Map<string, { n: number; c: number }>()
  let n0 = 0
  let c0 = 0
  let n1 = 0
  for (let i = 0; i < ring.size; i++) {
    const ms = ring.modelShares(i)
    if (!ms) continue
    const into = i < k ? before : after
    for (const m in ms) {
      const x = ms[m] as { n: number; c: number }
      const acc = into.get(m) ?? { n: 0, c: 0 }
      acc.n += x.n
      acc.c += x.c
      into.set(m, acc)
      if (i < k) {
        n0 += x.n
        c0 += x.c
      } else n1 += x.n
    }
  }
  if (n0 <= 0 || n1 <= 0 || c0 <= 0) return null
  const u0 = c0 / n0
  let mix = 0
  for (const m of new Set([...before.keys(), ...after.keys()])) {
    const b = before.get(m)
    const a = after.get(m)
    const ub = b && b.n > 0 ? b.c / b.n : NaN
    const ua = a && a.n > 0 ? a.c / a.n : NaN
    // the symmetric (Shapley) split of Δ(Σ share × unit cost): share changes at the mean of the
    // unit cost before and after, so a model whose first few requests fell just before the
    // estimated change point is not priced at those few requests alone
    const unit = Number.isNaN(ub) ? (Number.isNaN(ua) ? 0 : ua) : Number.isNaN(ua) ? ub : (ub + ua) / 2
    mix += ((a?.n ?? 0) / n1 - (b?.n ?? 0) / n0) * unit
  }
  return (mix / u0) * 100
}

/**
 * How much a series' share of its endpoint's requests moved across the change point: share after
 * over share before (Infinity when the series had none of the endpoint's traffic before), from the
 * endpoint rollup's per-model requests. Only endpoint minutes that are final whatever the delivery
 * order of the sibling series are read (before tNow − ENDPOINT_MAX_SKEW_WINDOWS − lag − 1 windows),
 * so the answer does not depend on interleaving. Null when either side has no endpoint requests.
 */
export function siblingShareRatio(ring: WindowRing, model: string, cp: number, tNow: number, windowMs: number): number | null {
  const bound = tNow - (ENDPOINT_MAX_SKEW_WINDOWS + TEAM_FINALIZE_LAG_WINDOWS + 1) * windowMs
  let n0 = 0
  let m0 = 0
  let n1 = 0
  let m1 = 0
  for (let i = 0; i < ring.size; i++) {
    const t = ring.get(i, COLS.t)
    if (t >= bound) break
    const ms = ring.modelShares(i)
    if (!ms) continue
    let all = 0
    for (const k in ms) all += (ms[k] as { n: number }).n
    const mine = ms[model]?.n ?? 0
    if (t < cp) {
      n0 += all
      m0 += mine
    } else {
      n1 += all
      m1 += mine
    }
  }
  if (n0 <= 0 || n1 <= 0) return null
  const s0 = m0 / n0
  const s1 = m1 / n1
  return s0 > 0 ? s1 / s0 : s1 > 0 ? Infinity : 1
}

/** Drivers of an endpoint rollup: the model mix takes its share out of the price residual. */
function withModelMix(d: AlertRecord['drivers'], totalPp: number, mixPp: number): AlertRecord['drivers'] {
  const round = (x: number): number => Math.round(x * 100) / 100
  const price = totalPp - d.input_tokens_per_request - d.output_tokens_per_request - d.cache_reads - d.error_share - mixPp
  const parts: [AlertRecord['drivers']['primary'], number][] = [
    ['input_tokens_per_request', d.input_tokens_per_request],
    ['output_tokens_per_request', d.output_tokens_per_request],
    ['cache_reads', d.cache_reads],
    ['price', price],
    ['error_share', d.error_share],
    ['model_mix', mixPp],
  ]
  let primary: AlertRecord['drivers']['primary'] = 'model_mix'
  let best = -1
  for (const [name, v] of parts) {
    if (Math.abs(v) > best) {
      best = Math.abs(v)
      primary = name
    }
  }
  return { ...d, price: round(price), model_mix: round(mixPp), primary }
}

/**
 * Cost per request: the recent level spans at least `resolveWindows` windows and, on a quiet key,
 * as many more (back to the change point) as it takes to know the level to ± a quarter of the
 * threshold, so that "back within half the threshold" is a statement about the data and not
 * about the noise of a few requests (an alert resolved on noise would page again on the same
 * break). Burn rate: the last `resolveWindows` windows.
 */
function levelSpan(key: KeyTracker, signal: Signal, notBefore: number, thr: number): { notBefore: number; relSe: number; dispersion: number } | undefined {
  return signal === 'cost_per_request' ? { notBefore, relSe: thr / 4, dispersion: key.base.dispersion } : undefined
}

/** The drivers of the change from the key's baseline to `cur`, priced at the model's catalog rates (else estimated from the baseline). */
function driversSince(key: KeyTracker, cur: WindowTotals, volumeChangePct: number): AlertRecord['drivers'] {
  const base = key.base.totals()
  const prices = catalogPrices(base, key.catalogRates()) ?? estimatePrices(base, key.base.xx, key.base.xy)
  return computeDrivers(base, cur, prices, volumeChangePct)
}

function dispersionOf(key: KeyTracker, signal: Signal): number {
  return signal === 'cost_per_request' ? key.base.dispersion : key.burn.dispersion
}

function severityOf(signal: Signal, dir: 1 | -1, rel: number, thr: number): AlertRecord['severity'] {
  if (dir < 0) return 'info'
  if (signal === 'cost_per_request' && rel >= 2 * thr) return 'critical'
  return 'warning'
}

function perHour(windowMs: number): number {
  return HOUR_MS / windowMs
}

function impact(signal: Signal, baseline: number, current: number, volume: number, windowMs: number): number {
  if (signal === 'burn_rate') return round2((current - baseline) * HOURS_PER_MONTH)
  return round2((current - baseline) * volume * perHour(windowMs) * HOURS_PER_MONTH)
}

const round2 = (x: number): number => Math.round(x * 100) / 100
const sig = (x: number): number => Number(x.toPrecision(6))

export function buildTrendAlert(
  key: KeyTracker,
  ctx: KeyContext,
  signal: Signal,
  dir: 1 | -1,
  cusumStart: number,
  tNow: number,
): { open: OpenAlert; record: AlertRecord } | null {
  const ring = key.ring
  const from = Math.max(0, ring.indexAtOrAfter(cusumStart) - CHANGE_POINT_SEARCH_BACK)
  const k = changePointIndex(ring, from, signal, dir)
  const cp = ring.get(k, COLS.t)
  // a burn-rate break must have lasted BURN_PERSIST_MS since its own change point (the run of
  // evidence may have started earlier: a surge of half an hour after a slightly busy hour)
  if (signal === 'burn_rate' && tNow - cp < BURN_PERSIST_MS - ctx.windowMs) return null
  const { exp } = cols(signal)
  const windows = ring.size - k
  const cur = ring.totals(k)
  let e = 0
  let xc = 0
  let cxc = 0
  for (let i = k; i < ring.size; i++) {
    e += ring.get(i, exp)
    const x = ring.get(i, COLS.xc)
    if (x > 0) {
      xc += x
      cxc += ring.get(i, COLS.c)
    }
  }
  if (e <= 0 || cur.n <= 0) return null
  const thr = signal === 'cost_per_request' ? ctx.thrCpr : ctx.thrBurn
  const rel = cur.c / e - 1
  if (dir * rel < thr / 2) return null
  const volume = cur.n / windows
  const base = key.base
  if (volume < ctx.minRequests || base.volume < ctx.minRequests) return null
  // still broken now: the level over the last resolveWindows windows is beyond half the threshold
  // (cost per request on a quiet series: the last windows hold few requests, so unless they are
  // conclusively back)
  const recent = recentLevel(ring, signal, ctx.resolveWindows, levelSpan(key, signal, k, thr))
  const slack = signal === 'cost_per_request' && recent !== null ? (2 * Math.sqrt(recent.v * dispersionOf(key, signal))) / recent.e : 0
  if (recent === null || dir * recent.rel + slack < thr / 2) return null
  const cprRel = xc > 0 ? cxc / xc - 1 : 0
  let baseline: number
  let current: number
  let volumeChangePct = 0
  if (signal === 'burn_rate') {
    // a burn-rate break explained by a unit-cost change belongs to the cost-per-request test; a
    // unit cost that moved the other way explains nothing (a retry storm: failed calls are cheaper,
    // and their retries make the spend rise)
    if (dir * cprRel >= ctx.thrCpr / 2) return null
    // a series whose burn moved because the endpoint's traffic moved to or from a sibling series
    // (another model of the same endpoint: a model swap, a router change, its rollback) has not
    // broken its own trend: the endpoint's unit cost (model mix) is the signal for that. What is
    // left once the share change is taken out must still be beyond half the threshold.
    if (key.endpointRing && key.model !== null) {
      const share = siblingShareRatio(key.endpointRing, key.model, cp, tNow, ctx.windowMs)
      if (share !== null && dir * ((1 + rel) / share - 1) < thr / 2) return null
    }
    baseline = (e / windows) * perHour(ctx.windowMs)
    current = (cur.c / windows) * perHour(ctx.windowMs)
    volumeChangePct = ((1 + rel) / (1 + cprRel) - 1) * 100
  } else {
    baseline = e / cur.n
    current = cur.c / cur.n
  }
  let drivers = driversSince(key, cur, volumeChangePct)
  if (key.isEndpoint) {
    // an endpoint across its models pages only what the model mix explains (the series own the rest)
    const mix = modelMixPp(ring, k)
    if (mix === null) return null
    drivers = withModelMix(drivers, rel * 100, mix)
    if (drivers.primary !== 'model_mix') return null
  }
  const { ids: deploymentIds, canaryFirstSeen } = attribute(ring, key.sightings, ctx.markers, key.endpoint, cp, tNow)
  // a canary that went to full rollout at the change point: the break began with the canary (at
  // its share of the traffic), unless it was first seen so long before that it is not one
  const startedAt = signal === 'cost_per_request' && dir > 0 && canaryFirstSeen !== null && cp - canaryFirstSeen <= HOLD_MAX_MS ? canaryFirstSeen : cp
  const id = alertId(key.team, key.endpoint, key.model, signal, startedAt)
  const open: OpenAlert = { id, signal, dir, thr, startedAt, levelFrom: cp, reportedRel: rel, baseline, windowsSince: 0, okStreak: 0, deploymentIds, drivers, volume }
  return { open, record: record(key, open, 'firing', current, rel, tNow + ctx.windowMs, ctx.windowMs) }
}

function record(key: KeyTracker, a: OpenAlert, status: AlertRecord['status'], current: number, rel: number, detectedAt: number, windowMs: number): AlertRecord {
  return {
    alert_id: a.id,
    status,
    team: key.team,
    endpoint: key.endpoint,
    model: key.model,
    signal: a.signal,
    direction: a.dir > 0 ? 'up' : 'down',
    baseline: sig(a.baseline),
    current: sig(current),
    change_pct: round2(rel * 100),
    started_at: toIso(a.startedAt),
    detected_at: toIso(detectedAt),
    deployment_ids: a.deploymentIds,
    drivers: a.drivers,
    severity: severityOf(a.signal, a.dir, a.dir * rel, a.thr),
    monthly_impact_usd: impact(a.signal, a.baseline, current, a.volume, windowMs),
    ...(a.canary ? { canary: { deployment_id: a.canary.id, compared_with: a.canary.olderId, traffic_pct: round2(a.canary.share * 100), change_pct: round2(a.canary.rel * 100) } } : {}),
  }
}

/**
 * Per window while an alert is open: the level over the last `resolveWindows` windows, against
 * the (frozen) baseline. `updated` when it is materially worse than last reported (by half the
 * threshold, beyond two standard errors); `resolved` after `resolveWindows` consecutive windows
 * whose rolling level is back within half the threshold.
 */
function recentLevel(
  ring: WindowRing,
  signal: Signal,
  windows: number,
  span?: { notBefore: number; relSe: number; dispersion: number },
): { rel: number; o: number; e: number; v: number; n: number; windows: number } | null {
  const { exp, vr } = cols(signal)
  const last = Math.max(0, ring.size - windows)
  const lo = span ? Math.max(0, Math.min(last, span.notBefore)) : last
  let o = 0
  let e = 0
  let v = 0
  let n = 0
  let i = ring.size - 1
  for (; i >= lo; i--) {
    // at least `windows` windows; on a quiet key, back until the level is known to ±relSe
    if (i < last && span && e > 0 && Math.sqrt(v * span.dispersion) / e <= span.relSe) break
    const x = ring.get(i, exp)
    if (x <= 0) continue
    o += ring.get(i, COLS.c)
    e += x
    v += ring.get(i, vr)
    n += ring.get(i, COLS.n)
  }
  if (e <= 0) return null
  return { rel: o / e - 1, o, e, v, n, windows: ring.size - 1 - i }
}

/**
 * A cost-per-request alert paged by the canary comparison (canary.ts): change point = the first
 * window of the newer ID, which leads the deployment list; baseline and current are the older and
 * newer IDs' cost per request over the minutes they shared. Drivers come from the series' windows
 * since the change point (diluted by the canary's share, but in the same proportions).
 */
export function buildCanaryAlert(key: KeyTracker, ctx: KeyContext, hit: CanaryHit, tNow: number): { open: OpenAlert; record: AlertRecord } | null {
  const ring = key.ring
  const k = ring.indexAtOrAfter(hit.first)
  if (k >= ring.size) return null
  const cur = ring.totals(k)
  const e = ring.sumFrom(k, COLS.xc)
  if (cur.n <= 0) return null
  const drivers = driversSince(key, cur, 0)
  const ranked = attribute(ring, key.sightings, ctx.markers, key.endpoint, hit.first, tNow).ids
  const deploymentIds = [hit.id, ...ranked.filter((d) => d !== hit.id)].slice(0, MAX_DEPLOYMENT_IDS_IN_ALERT)
  const id = alertId(key.team, key.endpoint, key.model, 'cost_per_request', hit.first)
  const open: OpenAlert = {
    id,
    signal: 'cost_per_request',
    dir: 1,
    thr: ctx.thrCpr,
    startedAt: hit.first,
    reportedRel: e > 0 ? cur.c / e - 1 : 0,
    baseline: hit.oldMean,
    windowsSince: 0,
    okStreak: 0,
    deploymentIds,
    drivers,
    volume: cur.n / (ring.size - k),
    canary: { id: hit.id, olderId: hit.olderId, share: hit.share, rel: hit.rel },
  }
  return { open, record: record(key, open, 'firing', hit.newMean, hit.rel, tNow + ctx.windowMs, ctx.windowMs) }
}

/**
 * A cost-per-request alert paged as a retry storm (key.ts, stepErrors): the error share rose
 * conclusively since `start` and the cost per successful call since then is at least the
 * threshold above the baseline's. Baseline and current are costs per successful call; the drivers
 * split the change per call as usual and the error share takes the rest (what the failed calls
 * and their retries add to each successful one). Null when the cost per successful call has not
 * risen by the threshold (yet) or the error share is not the largest part.
 */
export function buildStormAlert(key: KeyTracker, ctx: KeyContext, start: number, tNow: number): { open: OpenAlert; record: AlertRecord } | null {
  const ring = key.ring
  const k = ring.indexAtOrAfter(start)
  if (k >= ring.size) return null
  const cur = ring.totals(k)
  const base = key.base
  const okNow = cur.n - cur.e
  const okBase = base.n - base.e
  if (!(okNow > 0) || !(okBase > 0) || !(base.c > 0)) return null
  const baseline = base.c / okBase
  const current = cur.c / okNow
  const rel = current / baseline - 1
  if (rel < ctx.thrCpr) return null
  const d = driversSince(key, cur, 0)
  const others = [d.input_tokens_per_request, d.output_tokens_per_request, d.cache_reads, d.price]
  const errorPp = Math.round((rel * 100 - others.reduce((x, y) => x + y, 0)) * 100) / 100
  if (!(errorPp > Math.max(...others.map(Math.abs)))) return null
  const drivers: AlertRecord['drivers'] = { ...d, error_share: errorPp, primary: 'error_share' }
  const deploymentIds = attribute(ring, key.sightings, ctx.markers, key.endpoint, start, tNow).ids
  const id = alertId(key.team, key.endpoint, key.model, 'cost_per_request', start)
  const open: OpenAlert = { id, signal: 'cost_per_request', dir: 1, thr: ctx.thrCpr, startedAt: start, reportedRel: rel, baseline, windowsSince: 0, okStreak: 0, deploymentIds, drivers, volume: cur.n / (ring.size - k), storm: { baseline } }
  return { open, record: record(key, open, 'firing', current, rel, tNow + ctx.windowMs, ctx.windowMs) }
}

/** A retry storm's alert: the cost per successful call over the last resolveWindows windows against the baseline's. */
function updateStorm(key: KeyTracker, a: OpenAlert, storm: { baseline: number }, ctx: KeyContext, t: number): AlertRecord | null {
  const ring = key.ring
  let n = 0
  let e = 0
  let c = 0
  for (let i = Math.max(0, ring.size - ctx.resolveWindows); i < ring.size; i++) {
    n += ring.get(i, COLS.n)
    e += ring.get(i, COLS.e)
    c += ring.get(i, COLS.c)
  }
  if (!(n - e > 0)) return null
  const current = c / (n - e)
  const rel = current / storm.baseline - 1
  const detectedAt = t + ctx.windowMs
  if (rel <= a.thr / 2) a.okStreak++
  else a.okStreak = 0
  if (a.okStreak >= ctx.resolveWindows && a.windowsSince >= ctx.resolveWindows) return record(key, a, 'resolved', current, rel, detectedAt, ctx.windowMs)
  // materially worse: by a whole threshold (the cost per successful call of a few windows is noisy)
  if (rel >= a.reportedRel + a.thr) {
    a.reportedRel = rel
    return record(key, a, 'updated', current, rel, detectedAt, ctx.windowMs)
  }
  return null
}

export function updateOrResolve(key: KeyTracker, a: OpenAlert, ctx: KeyContext, t: number, informative: boolean): AlertRecord | null {
  a.windowsSince++
  if (!informative) return null
  if (a.storm) return updateStorm(key, a, a.storm, ctx, t)
  // a canary's alert stays open while the canary and the ID it was compared with both serve
  if (a.canary && key.canary.serving(a.canary.id, t, ctx.windowMs) && key.canary.serving(a.canary.olderId, t, ctx.windowMs)) {
    a.okStreak = 0
    return null
  }
  const r = recentLevel(key.ring, a.signal, ctx.resolveWindows, levelSpan(key, a.signal, key.ring.indexAtOrAfter(a.levelFrom ?? a.startedAt), a.thr))
  if (r === null) return null
  const { rel, o, e, v, n, windows } = r
  const se = Math.sqrt(v * dispersionOf(key, a.signal)) / e
  const current = a.signal === 'cost_per_request' ? (n > 0 ? o / n : 0) : (o / windows) * perHour(ctx.windowMs)
  const detectedAt = t + ctx.windowMs
  if (Math.abs(rel) <= a.thr / 2) a.okStreak++
  else a.okStreak = 0
  if (a.okStreak >= ctx.resolveWindows && a.windowsSince >= ctx.resolveWindows) return record(key, a, 'resolved', current, rel, detectedAt, ctx.windowMs)
  if (a.dir * rel - 2 * se >= a.dir * a.reportedRel + a.thr / 2) {
    a.reportedRel = rel
    if (a.signal === 'cost_per_request' && n > 0) a.volume = n / windows
    return record(key, a, 'updated', current, rel, detectedAt, ctx.windowMs)
  }
  return null
}
