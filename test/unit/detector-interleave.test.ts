/**
 * Property: the detector core's alerts do not depend on how windows of DIFFERENT series
 * interleave, as long as each series' own windows arrive in order (the live detector reads
 * several Kafka partitions; a fast replay lets one partition run hours of event time ahead of
 * another). Reference: the same windows in global event-time order (what the backtest feeds).
 *
 * The core tolerates a skew between series of up to TEAM_MAX_SKEW_WINDOWS of event time
 * (params.ts); the interleavings below run streams up to ~3.3 h apart, within that bound.
 */
import { describe, expect, it } from 'vitest'
import type { AlertRecord } from '../../schemas/alert.ts'
import type { DeploymentMarker } from '../../schemas/deployment.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import { Rng } from '../../eval/rng.ts'
import { TEAM_MAX_SKEW_WINDOWS } from '../../services/detector/core/params.ts'
import { createDetectorCore, defaultDetectorConfig, type DetectorConfig } from '../../services/detector/core/index.ts'
import { makeWindow } from '../support/windows.ts'

const M = 60_000
const H = 60 * M
const T0 = Date.UTC(2026, 0, 5, 0, 0)
const HOURS = 15
const PIN = 0.15e-6
const POUT = 0.6e-6

interface Spec {
  team: string
  endpoint: string
  /** mean requests per minute at time t */
  rate: (t: number) => number
  /** input-token multiplier and deployment at time t */
  inMult?: (t: number) => number
  deploy?: (t: number) => string
  from?: number
  to?: number
  /** no traffic while true (quiet spells) */
  quiet?: (t: number) => boolean
}

const diurnal = (base: number, phase: number) => (t: number) => base * (1 + 0.3 * Math.sin((2 * Math.PI * (t - T0)) / (24 * H) + phase))

const SPECS: Spec[] = [
  // team a: a +60% unit-cost step at 8 h on one series (deployment a1-v2, with a marker)
  { team: 'a', endpoint: 'a1', rate: diurnal(150, 0), inMult: (t) => (t >= T0 + 8 * H && t < T0 + 11 * H ? 1.8 : 1), deploy: (t) => (t >= T0 + 8 * H ? 'a1-v2' : 'a1-v1') },
  { team: 'a', endpoint: 'a2', rate: diurnal(80, 1) },
  { team: 'a', endpoint: 'a3', rate: diurnal(60, 2), quiet: (t) => ((t - T0) / M) % 150 >= 130 }, // 20-minute quiet spells
  { team: 'a', endpoint: 'a4', rate: diurnal(40, 3), from: T0 + 3 * H }, // appears later
  { team: 'a', endpoint: 'a5', rate: diurnal(30, 4), to: T0 + 10 * H }, // goes away
  // team b: traffic of one series triples from 9 h (burn rate, series and team), a small budget
  { team: 'b', endpoint: 'b1', rate: (t) => diurnal(120, 0.5)(t) * (t >= T0 + 9 * H ? 3 : 1) },
  { team: 'b', endpoint: 'b2', rate: diurnal(100, 1.5), inMult: (t) => (t >= T0 + 6 * H && t < T0 + 7 * H ? 1.5 : 1), deploy: (t) => (t >= T0 + 6 * H && t < T0 + 7 * H ? 'b2-v2' : 'b2-v1') },
  { team: 'b', endpoint: 'b3', rate: diurnal(50, 2.5), quiet: (t) => t >= T0 + 5 * H && t < T0 + 5 * H + 45 * M },
  { team: 'b', endpoint: 'b4', rate: diurnal(25, 3.5) },
]

const MARKERS: DeploymentMarker[] = [
  { deployment_id: 'a1-v2', team: 'a', service: 'a1', endpoint: 'a1', timestamp: new Date(T0 + 8 * H).toISOString() },
  { deployment_id: 'b2-v2', team: 'b', service: 'b2', endpoint: 'b2', timestamp: new Date(T0 + 6 * H).toISOString() },
  { deployment_id: 'b-infra-7', team: 'b', service: 'infra', timestamp: new Date(T0 + 9 * H - 2 * M).toISOString() },
  { deployment_id: 'a-infra-3', team: 'a', service: 'infra', timestamp: new Date(T0 + 8 * H + 3 * M).toISOString() },
]

const CONFIG: DetectorConfig = {
  ...defaultDetectorConfig,
  // team b's budget: ~$0.05/h even rate; it spends ~$2/h (40x): budget alerts once its rollup runs
  teams: [{ name: 'a' }, { name: 'b', monthlyBudgetUsd: 40 }],
}

/** Windows of one series in order (normal approximation of per-request sums; cv ≈ 0.5 per request). */
function windowsOf(s: Spec, rng: Rng): WindowRecord[] {
  const out: WindowRecord[] = []
  for (let t = s.from ?? T0; t < (s.to ?? T0 + HOURS * H); t += M) {
    if (s.quiet?.(t)) continue
    const n = rng.poisson(s.rate(t))
    if (n === 0) continue
    const im = s.inMult?.(t) ?? 1
    const i = Math.max(n, Math.round(n * 1500 * im + Math.sqrt(n) * 750 * im * rng.normal()))
    const o = Math.max(n, Math.round(n * 150 + Math.sqrt(n) * 75 * rng.normal()))
    const c = i * PIN + o * POUT
    const mean = c / n
    const dep = s.deploy?.(t) ?? `${s.endpoint}-v1`
    out.push(makeWindow({ team: s.team, endpoint: s.endpoint, start: t, windowMs: M, requests: n, input: i, output: o, cost: c, costSq: n * mean * mean * 1.25, deployment: dep }))
  }
  return out
}

const rng = new Rng(7)
const perSeries = SPECS.map((s) => windowsOf(s, rng))

function run(feed: WindowRecord[], markers: DeploymentMarker[] = MARKERS): AlertRecord[] {
  const d = createDetectorCore(CONFIG)
  for (const m of markers) d.onDeployment(m)
  const out: AlertRecord[] = []
  for (const w of feed) out.push(...d.onWindow(w))
  out.push(...d.flush())
  return out
}

/** Global event-time order (the backtest's order). */
function globalOrder(): WindowRecord[] {
  return perSeries.flatMap((ws, k) => ws.map((w) => ({ w, k, t: Date.parse(w.window_start) }))).sort((a, b) => a.t - b.t || a.k - b.k).map((x) => x.w)
}

/**
 * Series randomly assigned to 3 streams (partitions); each stream keeps its windows in time
 * order; streams are delivered in random-sized chunks of up to 300 windows, a chunk stopping
 * where its stream would run more than MAX_LEAD ahead of the slowest stream.
 */
const MAX_LEAD = 200 * M
function interleaving(seed: number): { feed: WindowRecord[]; maxSkewMs: number } {
  const r = new Rng(seed)
  const streams: WindowRecord[][] = [[], [], []]
  perSeries.forEach((ws) => streams[r.int(3)]!.push(...ws))
  for (const s of streams) s.sort((a, b) => Date.parse(a.window_start) - Date.parse(b.window_start))
  const pos = streams.map(() => 0)
  const head = (k: number) => (pos[k]! < streams[k]!.length ? Date.parse(streams[k]![pos[k]!]!.window_start) : Infinity)
  const feed: WindowRecord[] = []
  let maxDelivered = -Infinity
  let maxSkewMs = 0
  for (;;) {
    const open = [0, 1, 2].filter((k) => head(k) < Infinity)
    if (open.length === 0) break
    const slowest = Math.min(...open.map(head))
    const k = r.pick(open.filter((j) => head(j) < slowest + MAX_LEAD))
    const size = 1 + r.int(300)
    for (let i = 0; i < size && head(k) < slowest + MAX_LEAD; i++) {
      const w = streams[k]![pos[k]!++]!
      maxDelivered = Math.max(maxDelivered, Date.parse(w.window_start))
      const slow = Math.min(...[0, 1, 2].map(head))
      if (slow < Infinity) maxSkewMs = Math.max(maxSkewMs, maxDelivered - slow)
      feed.push(w)
    }
  }
  return { feed, maxSkewMs }
}

const canon = (alerts: AlertRecord[]) =>
  alerts
    .map((a) => JSON.stringify(a))
    .sort((x, y) => {
      const a = JSON.parse(x) as AlertRecord
      const b = JSON.parse(y) as AlertRecord
      return a.alert_id < b.alert_id ? -1 : a.alert_id > b.alert_id ? 1 : a.status < b.status ? -1 : a.status > b.status ? 1 : x < y ? -1 : x > y ? 1 : 0
    })

describe('detector core: independent of how series interleave', () => {
  const reference = run(globalOrder())

  it('the reference run has series and team alerts (the property is not vacuous)', () => {
    expect(reference.some((a) => a.endpoint !== null && a.signal === 'cost_per_request' && a.status === 'firing')).toBe(true)
    expect(reference.some((a) => a.endpoint === null && a.status === 'firing')).toBe(true)
    expect(reference.some((a) => a.signal === 'budget_burn')).toBe(true)
    expect(reference.some((a) => a.endpoint !== null && a.signal === 'burn_rate')).toBe(true)
  })

  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`random partition interleaving #${seed} gives the same alert records`, () => {
      const { feed, maxSkewMs } = interleaving(seed)
      expect(feed).toHaveLength(perSeries.reduce((s, ws) => s + ws.length, 0))
      // hours of skew between streams, within the documented bound
      expect(maxSkewMs).toBeGreaterThanOrEqual(60 * M)
      expect(maxSkewMs).toBeLessThan(TEAM_MAX_SKEW_WINDOWS * M)
      expect(canon(run(feed))).toEqual(canon(reference))
    })
  }

  it('the whole stream of one series first, then the next (within the skew bound per team member), is the same', () => {
    // series by series in blocks of 3 h: every series of a block before any later block
    const feed = globalOrder().sort((a, b) => {
      const ba = Math.floor((Date.parse(a.window_start) - T0) / (3 * H))
      const bb = Math.floor((Date.parse(b.window_start) - T0) / (3 * H))
      return ba - bb || (a.endpoint < b.endpoint ? -1 : a.endpoint > b.endpoint ? 1 : 0)
    })
    expect(canon(run(feed))).toEqual(canon(reference))
  })

  it('deployment markers: arrival order does not matter', () => {
    const shuffled = [...MARKERS].reverse()
    expect(canon(run(globalOrder(), shuffled))).toEqual(canon(reference))
  })
})
