/**
 * Labelled scenario suite: series specs over simulated days. Every series has a diurnal traffic
 * shape and routine deployments (a new deployment ID every 2–6 h that changes nothing); the
 * scenario kind adds one labelled event on day 2 or 3.
 */
import type { TokenSample } from './dataset.ts'
import { Rng } from './rng.ts'

export type Kind = 'control' | 'null_deploy' | 'surge' | 'spike' | 'step' | 'small_step' | 'drift' | 'quiet_step' | 'volume_shift'

export interface Model {
  name: string
  /** USD per token */
  pin: number
  pout: number
  pcache: number
}

export const MODELS: Model[] = [
  { name: 'gpt-4o-mini', pin: 0.15e-6, pout: 0.6e-6, pcache: 0.075e-6 },
  { name: 'gpt-4o', pin: 2.5e-6, pout: 10e-6, pcache: 1.25e-6 },
  { name: 'claude-sonnet-4', pin: 3e-6, pout: 15e-6, pcache: 0.3e-6 },
]

export interface Deploy {
  t: number
  id: string
  /** windows over which the new ID rolls out (share of requests ramps to 1) */
  rollout: number
  marker: boolean
}

export interface SeriesSpec {
  team: string
  endpoint: string
  model: Model
  tokens: TokenSample
  cacheFrac: number
  rate: number
  amp: number
  peakHour: number
  kind: Kind
  deploys: Deploy[]
  /** the labelled event */
  t0: number
  t1: number
  /** target relative change of cost per request (step, small_step, drift, quiet_step) */
  change: number
  via: 'input' | 'output'
  causeId: string | null
  inMult: number
  outMult: number
  /** request multiplier (surge, volume_shift), cost-per-request multiplier for a spike */
  factor: number
  spikeOnRequests: boolean
}

export const START = Date.UTC(2026, 0, 5)
export const DAYS = 3
const H = 3_600_000
const M = 60_000

const COUNTS: [Kind, number][] = [
  ['step', 48],
  ['quiet_step', 12],
  ['drift', 10],
  ['small_step', 15],
  ['spike', 12],
  ['surge', 12],
  ['null_deploy', 10],
  ['volume_shift', 6],
  ['control', 30],
]
const STEP_CHANGES = [0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 0.9, 1.2]

function costShares(tokens: TokenSample, model: Model, cacheFrac: number): { sin: number; sout: number } {
  const inCost = tokens.meanInput * ((1 - cacheFrac) * model.pin + cacheFrac * model.pcache)
  const outCost = tokens.meanOutput * model.pout
  return { sin: inCost / (inCost + outCost), sout: outCost / (inCost + outCost) }
}

export function buildScenarios(seed: number, code: TokenSample, conv: TokenSample): SeriesSpec[] {
  const rng = new Rng(seed)
  const specs: SeriesSpec[] = []
  let seq = 0
  for (const [kind, count] of COUNTS) {
    for (let j = 0; j < count; j++) {
      seq++
      const tokens = rng.next() < 0.5 ? code : conv
      const model = rng.next() < 0.6 ? (MODELS[0] as Model) : rng.pick(MODELS.slice(1))
      const cacheFrac = rng.next() < 0.3 ? rng.uniform(0.1, 0.5) : 0
      const quiet = kind === 'quiet_step'
      const rate = quiet ? rng.uniform(20, 40) : Math.exp(rng.uniform(Math.log(60), Math.log(300)))
      const team = `team-${String(Math.floor((seq - 1) / 3)).padStart(3, '0')}`
      const endpoint = `ep-${kind}-${j}`
      const deploys: Deploy[] = []
      let t = START + rng.uniform(1, 4) * H
      let d = 0
      while (t < START + DAYS * 24 * H) {
        deploys.push({ t: Math.floor(t / M) * M, id: `${endpoint}-r${d++}`, rollout: 1 + rng.int(3), marker: rng.next() < 0.5 })
        t += rng.uniform(2, 6) * H
      }
      const t0 = Math.floor((START + rng.uniform(28, 62) * H) / M) * M
      let change = 0
      if (kind === 'step') change = j < 40 ? (STEP_CHANGES[j % STEP_CHANGES.length] as number) : -rng.uniform(0.25, 0.45)
      if (kind === 'quiet_step') change = rng.uniform(0.3, 1.0)
      if (kind === 'small_step') change = rng.uniform(0.1, 0.15)
      if (kind === 'drift') change = 0.4
      const { sin, sout } = costShares(tokens, model, cacheFrac)
      let via: 'input' | 'output' = rng.next() < 0.5 ? 'input' : 'output'
      if (change < 0 || (via === 'output' && sout < 0.2) || (via === 'input' && sin < 0.2)) via = sin >= sout ? 'input' : 'output'
      const inMult = via === 'input' ? 1 + change / sin : 1
      const outMult = via === 'output' ? 1 + change / sout : 1
      const duration = kind === 'drift' ? 4 * H : kind === 'surge' ? rng.uniform(10, 45) * M : 3 * H
      const t1 = Math.floor((t0 + duration) / M) * M
      let causeId: string | null = null
      if (kind === 'step' || kind === 'small_step' || kind === 'quiet_step' || kind === 'null_deploy' || kind === 'drift') {
        causeId = `${endpoint}-cause`
        // routine deploys too close to the event would make the label ambiguous: keep 20 min clear
        for (let i = deploys.length - 1; i >= 0; i--) {
          const dt = (deploys[i] as Deploy).t
          if (dt > t0 - 20 * M && dt < t1 + 20 * M) deploys.splice(i, 1)
        }
        deploys.push({ t: t0, id: causeId, rollout: 1 + rng.int(2), marker: rng.next() < 0.5 })
        if (kind !== 'null_deploy' && kind !== 'drift') deploys.push({ t: t1, id: `${endpoint}-rollback`, rollout: 1, marker: rng.next() < 0.5 })
        deploys.sort((a, b) => a.t - b.t)
      }
      specs.push({
        team,
        endpoint,
        model,
        tokens,
        cacheFrac,
        rate,
        amp: rng.uniform(0.3, 0.6),
        peakHour: rng.uniform(13, 19),
        kind,
        deploys,
        t0,
        t1,
        change,
        via,
        causeId,
        inMult,
        outMult,
        factor: kind === 'spike' ? 10 : kind === 'surge' || kind === 'volume_shift' ? 3 : 1,
        spikeOnRequests: kind === 'spike' && j % 2 === 1,
      })
    }
  }
  return specs
}
