/**
 * Per-minute window records of one endpoint (one record per model it used that minute), drawn
 * request by request from the real token distributions of the Azure LLM inference trace 2023,
 * and the label statistics of its event: the realized change of cost per request and the
 * evidence floor (the first minute after the true start at which the requests since then give a
 * one-sided z >= 4 against the mean and standard deviation of cost per request over the
 * PRE_MS before the start).
 */
import type { WindowRecord } from '../schemas/window.ts'
import { createDeduper, type Deduper } from '../services/aggregator/dedup.ts'
import { Rng } from './rng.ts'
import type { Deploy, Model, SeriesSpec, Service } from './scenarios.ts'

const M = 60_000
const H = 3_600_000
const DAY = 24 * H
const PRE_MS = 6 * H
const FLOOR_Z = 4

export interface Label {
  /** ok: successful calls (a retry storm's cost per successful call is the cost of the work done) */
  pre: { n: number; c: number; q: number; ok: number }
  post: { n: number; c: number; ok: number }
  since: { n: number; c: number }
  /** evidence floor: minute (ms) at which z >= 4 was first reached, or null */
  floorAt: number | null
}

export interface SeriesCursor {
  spec: SeriesSpec
  deployIdx: number[]
  label: Label
  /** kinds added after the original suite draw from their own stream, so the suite's draws stay the same */
  rng?: Rng
  /** duplicate_storm: the aggregator's own deduplication (services/aggregator/dedup.ts), and calls per recent minute */
  dedup?: Deduper
  recent?: Map<number, number>
  /** duplicate_storm: copies dropped by the deduplication, and copies that got through */
  dropped?: number
  passed?: number
}

/** The aggregator's default deduplication horizon (config defaults.dedup_horizon). */
const DEDUP_HORIZON_MS = H

export function newCursor(spec: SeriesSpec, seed = 0): SeriesCursor {
  const c: SeriesCursor = { spec, deployIdx: spec.services.map(() => 0), label: { pre: { n: 0, c: 0, q: 0, ok: 0 }, post: { n: 0, c: 0, ok: 0 }, since: { n: 0, c: 0 }, floorAt: null } }
  if (spec.kind === 'duplicate_storm') {
    c.rng = new Rng(seed)
    c.dedup = createDeduper(DEDUP_HORIZON_MS)
    c.recent = new Map()
    c.dropped = 0
    c.passed = 0
  }
  return c
}

/** Realized relative change of cost per request over the label's post span, or NaN. */
export function realizedChange(l: Label): number {
  if (l.pre.n === 0 || l.post.n === 0) return NaN
  return l.post.c / l.post.n / (l.pre.c / l.pre.n) - 1
}

/**
 * Realized relative change of cost per successful call, or NaN: what a retry storm costs the work
 * done (failed calls bill their input and are retried, so the cost per call may even fall).
 */
export function realizedChangePerSuccess(l: Label): number {
  if (l.pre.ok === 0 || l.post.ok === 0) return NaN
  return l.post.c / l.post.ok / (l.pre.c / l.pre.ok) - 1
}

/** The span over which the realized change is measured. */
function postSpan(s: SeriesSpec): [number, number] {
  if (s.kind === 'drift') return [s.t0 + 2 * H, s.t1]
  const canary = s.services[0]?.deploys.find((d) => d.id === s.causeId)?.canaryMs
  if (canary !== undefined) return [s.t0 + canary, s.t0 + canary + H]
  return [s.t0, Math.min(s.t1, s.t0 + 2 * H)]
}

function deploymentAt(c: SeriesCursor, k: number, svc: Service, t: number, rng: Rng): string {
  const d = svc.deploys
  let idx = c.deployIdx[k] ?? 0
  while (idx + 1 < d.length && (d[idx + 1]?.t ?? Infinity) <= t) idx++
  c.deployIdx[k] = idx
  const cur: Deploy | undefined = d[idx]
  const init = `${svc.name}-r-init`
  if (!cur || cur.t > t) return init
  const prev = d[idx - 1]?.id ?? init
  if (cur.canaryShare !== undefined && cur.canaryMs !== undefined && t < cur.t + cur.canaryMs) return rng.next() < cur.canaryShare ? cur.id : prev
  const age = Math.round((t - cur.t - (cur.canaryMs ?? 0)) / M)
  if (age < cur.rollout && rng.next() > (age + 1) / (cur.rollout + 1)) return prev
  return cur.id
}

function rateAt(s: SeriesSpec, t: number, rng: Rng): number {
  const hour = ((t / H) % 24 + 24) % 24
  const dow = (Math.floor(t / DAY) + 4) % 7 // 0 = Sunday (1970-01-01 was a Thursday)
  const weekend = dow === 0 || dow === 6
  let lambda = s.rate * Math.max(0.05, 1 + s.amp * Math.cos((2 * Math.PI * (hour - s.peakHour)) / 24))
  if (weekend) lambda *= s.weekendFactor
  lambda *= Math.pow(1 + s.growthPerDay, (t - s.startAt) / DAY)
  lambda *= Math.exp(s.burstSigma * rng.normal() - (s.burstSigma * s.burstSigma) / 2)
  if (rng.next() < s.burstChance) lambda *= 3
  return lambda
}

interface Acc {
  n: number
  e: number
  /** retries (the call after a failed one in a storm) */
  r: number
  i: number
  o: number
  k: number
  c: number
  q: number
  /** cost by token component, as the aggregator prices it: uncached input, cache reads, output */
  cu: number
  cr: number
  co: number
  deps: Record<string, number>
  depC: Record<string, number>
  depQ: Record<string, number>
}

export function windowsAt(cur: SeriesCursor, t: number, shared: Rng): WindowRecord[] {
  const s = cur.spec
  const rng = cur.rng ?? shared
  if (t < s.startAt) return []
  const inEvent = t >= s.t0 && t < s.t1
  if (s.kind === 'outage' && inEvent) return []
  let lambda = rateAt(s, t, rng)
  if (s.kind === 'surge' && inEvent) lambda *= s.factor
  const spike = s.kind === 'spike' && t === s.t0
  if (spike && s.spikeOnRequests) lambda *= s.factor
  let n = rng.poisson(lambda)
  const drift = s.kind === 'drift' && inEvent ? Math.min(1, (t - s.t0) / (2 * H)) : 0
  const { input, output } = s.tokens
  const len = input.length
  const byModel = new Map<string, Acc>()
  let tc = 0
  let tq = 0
  let tn = 0
  let tok = 0
  // duplicate_storm: every call passes the aggregator's deduplication by event ID (from an hour
  // before the storm, so the calls it replays are known); a stuck outbox replays the calls of the
  // last minutes, each copy again through the deduplication. A replayed copy that got through
  // would be late (its window closed) and miss the windows anyway; a copy of this minute's call
  // that got through would count twice in its window. The detector sees what passes.
  const dedup = cur.dedup && t >= s.t0 - H && t < s.t1 + H ? cur.dedup : undefined
  const storm = s.resend && inEvent ? s.resend : null
  if (dedup && storm && cur.recent) {
    for (let m = 1; m <= storm.replayMinutes; m++) {
      const past = t - m * M
      for (let r = 0; r < (cur.recent.get(past) ?? 0); r++) {
        if (dedup.addIfNew(s.endpoint, `${s.endpoint}:${past}:${r}`, past)) cur.passed = (cur.passed ?? 0) + 1
        else cur.dropped = (cur.dropped ?? 0) + 1
      }
    }
  }
  let pendingRetries = 0
  for (let r = 0; r < n; r++) {
    let copiesIn = 1
    if (dedup) {
      const id = `${s.endpoint}:${t}:${r}`
      copiesIn = 0
      for (let k = 0; k < (storm ? storm.copies : 1); k++) {
        if (dedup.addIfNew(s.endpoint, id, t)) copiesIn++
        else cur.dropped = (cur.dropped ?? 0) + 1
      }
      if (copiesIn > 1) cur.passed = (cur.passed ?? 0) + copiesIn - 1
    }
    const k = s.services.length > 1 && rng.next() >= (s.services[0] as Service).share ? 1 : 0
    const svc = s.services[k] as Service
    const id = deploymentAt(cur, k, svc, t, rng)
    const caused = id === s.causeId
    const idx = Math.floor(rng.next() * len)
    let im = 1
    let om = 1
    let model: Model = s.model
    let cacheFrac = s.cacheFrac
    let errorShare = 0.01
    if (caused) {
      im = s.inMult
      om = s.outMult
      if (s.swapTo) model = s.swapTo
      cacheFrac = s.cacheAfter
      errorShare = s.errorShare
    } else if (drift > 0) {
      im = 1 + (s.inMult - 1) * drift
      om = 1 + (s.outMult - 1) * drift
    }
    if (spike && !s.spikeOnRequests) {
      im *= s.factor
      om *= s.factor
    }
    const price = s.kind === 'price_change' && t >= s.t0 ? s.priceMult : 1
    const error = rng.next() < errorShare
    // the call after a failed one in a storm is its retry (the producer marks it: retry_attempt)
    const retry = pendingRetries > 0
    if (retry) pendingRetries--
    // a failed call bills its input and is retried once (the retry is another request)
    if (error && errorShare > 0.05) {
      n++
      pendingRetries++
    }
    const it = Math.round((input[idx] ?? 0) * im)
    const ot = error ? 0 : Math.round((output[idx] ?? 0) * om)
    const ct = Math.round(it * cacheFrac)
    const cu = (it - ct) * model.pin * price
    const cr = ct * model.pcache * price
    const co = ot * model.pout * price
    const cst = ((it - ct) * model.pin + ct * model.pcache + ot * model.pout) * price
    tc += cst
    tq += cst * cst
    tn++
    if (!error) tok++
    // late events are stored but miss their window
    if (s.lateShare > 0 && inEvent && rng.next() < s.lateShare) continue
    let a = byModel.get(model.name)
    if (!a) byModel.set(model.name, (a = { n: 0, e: 0, r: 0, i: 0, o: 0, k: 0, c: 0, q: 0, cu: 0, cr: 0, co: 0, deps: {}, depC: {}, depQ: {} }))
    // a copy that got past the deduplication counts again
    for (let k = 0; k < copiesIn; k++) {
      a.n++
      if (error) a.e++
      if (retry) a.r++
      a.i += it
      a.o += ot
      a.k += ct
      a.c += cst
      a.q += cst * cst
      a.cu += cu
      a.cr += cr
      a.co += co
      a.deps[id] = (a.deps[id] ?? 0) + 1
      a.depC[id] = (a.depC[id] ?? 0) + cst
      a.depQ[id] = (a.depQ[id] ?? 0) + cst * cst
    }
  }
  if (cur.recent && dedup) {
    cur.recent.set(t, n)
    cur.recent.delete(t - 11 * M)
  }
  track(cur, t, tn, tc, tq, tok)
  const out: WindowRecord[] = []
  for (const [name, a] of byModel) {
    out.push({
      team: s.team,
      endpoint: s.endpoint,
      model: name,
      window_start: new Date(t).toISOString(),
      window_end: new Date(t + M).toISOString(),
      requests: a.n,
      errors: a.e,
      retries: a.r,
      input_tokens: a.i,
      output_tokens: a.o,
      cache_read_tokens: a.k,
      cache_write_tokens: 0,
      cost_usd: a.c,
      cost_sq_sum: a.q,
      unpriced_requests: 0,
      late_events: 0,
      deployments: a.deps,
      deployment_costs: a.depC,
      deployment_cost_sq: a.depQ,
      cost_input_usd: a.cu,
      cost_cache_read_usd: a.cr,
      cost_cache_write_usd: 0,
      cost_output_usd: a.co,
    })
  }
  return out
}

function track(cur: SeriesCursor, t: number, n: number, c: number, q: number, ok: number): void {
  const s = cur.spec
  const l = cur.label
  if (t >= s.t0 - PRE_MS && t < s.t0) {
    l.pre.n += n
    l.pre.c += c
    l.pre.q += q
    l.pre.ok += ok
  }
  const [p0, p1] = postSpan(s)
  if (t >= p0 && t < p1) {
    l.post.n += n
    l.post.c += c
    l.post.ok += ok
  }
  if (t >= s.t0 && t < s.t1 && l.floorAt === null && l.pre.n > 1) {
    l.since.n += n
    l.since.c += c
    const mu = l.pre.c / l.pre.n
    const sd = Math.sqrt(Math.max(l.pre.q / l.pre.n - mu * mu, 0))
    const dir = s.change < 0 ? -1 : 1
    if (l.since.n > 0 && sd > 0 && (dir * (l.since.c - l.since.n * mu)) / (sd * Math.sqrt(l.since.n)) >= FLOOR_Z) l.floorAt = t + M
  }
}
