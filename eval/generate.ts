/** Per-minute window records of one series, drawn request by request from the real token distributions. */
import type { WindowRecord } from '../schemas/window.ts'
import type { Rng } from './rng.ts'
import type { SeriesSpec } from './scenarios.ts'

const M = 60_000
const H = 3_600_000

export interface SeriesCursor {
  spec: SeriesSpec
  deployIdx: number
}

function deploymentAt(c: SeriesCursor, t: number, rng: Rng): string {
  const d = c.spec.deploys
  while (c.deployIdx + 1 < d.length && (d[c.deployIdx + 1]?.t ?? Infinity) <= t) c.deployIdx++
  const cur = d[c.deployIdx]
  if (!cur || cur.t > t) return `${c.spec.endpoint}-r-init`
  const age = Math.round((t - cur.t) / M)
  if (age < cur.rollout && rng.next() > (age + 1) / (cur.rollout + 1)) {
    const prev = d[c.deployIdx - 1]
    return prev ? prev.id : `${c.spec.endpoint}-r-init`
  }
  return cur.id
}

export function windowAt(c: SeriesCursor, t: number, rng: Rng): WindowRecord | null {
  const s = c.spec
  const hour = ((t / H) % 24 + 24) % 24
  let lambda = s.rate * (1 + s.amp * Math.cos((2 * Math.PI * (hour - s.peakHour)) / 24))
  const inEvent = t >= s.t0 && t < s.t1
  if ((s.kind === 'surge' || s.kind === 'volume_shift') && inEvent) lambda *= s.factor
  const spike = s.kind === 'spike' && t === s.t0
  if (spike && s.spikeOnRequests) lambda *= s.factor
  const n = rng.poisson(lambda)
  if (n === 0) return null
  let drift = 0
  if (s.kind === 'drift' && inEvent) drift = Math.min(1, (t - s.t0) / (2 * H))
  const { input, output } = s.tokens
  const len = input.length
  const { pin, pout, pcache } = s.model
  let inTok = 0
  let outTok = 0
  let cacheTok = 0
  let cost = 0
  let costSq = 0
  let errors = 0
  const deps: Record<string, number> = {}
  const stepKind = s.kind === 'step' || s.kind === 'small_step' || s.kind === 'quiet_step'
  for (let r = 0; r < n; r++) {
    const id = deploymentAt(c, t, rng)
    deps[id] = (deps[id] ?? 0) + 1
    const idx = Math.floor(rng.next() * len)
    let im = 1
    let om = 1
    if (stepKind && id === s.causeId) {
      im = s.inMult
      om = s.outMult
    } else if (drift > 0) {
      im = 1 + (s.inMult - 1) * drift
      om = 1 + (s.outMult - 1) * drift
    }
    if (spike && !s.spikeOnRequests) {
      im *= s.factor
      om *= s.factor
    }
    const it = Math.round((input[idx] ?? 0) * im)
    const ot = Math.round((output[idx] ?? 0) * om)
    const ct = Math.round(it * s.cacheFrac)
    const cst = (it - ct) * pin + ct * pcache + ot * pout
    inTok += it
    outTok += ot
    cacheTok += ct
    cost += cst
    costSq += cst * cst
    if (rng.next() < 0.01) errors++
  }
  return {
    team: s.team,
    endpoint: s.endpoint,
    model: s.model.name,
    window_start: new Date(t).toISOString(),
    window_end: new Date(t + M).toISOString(),
    requests: n,
    errors,
    input_tokens: inTok,
    output_tokens: outTok,
    cache_read_tokens: cacheTok,
    cache_write_tokens: 0,
    cost_usd: cost,
    cost_sq_sum: costSq,
    unpriced_requests: 0,
    late_events: 0,
    deployments: deps,
  }
}
