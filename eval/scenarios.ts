/**
 * Labelled scenario suite: one spec per endpoint over DAYS simulated days starting on a Monday.
 * Every endpoint has a diurnal shape with a night trough, a weekly shape (quiet weekend, the
 * Monday ramp back), bursty minutes, routine deployments from one or two services (a new
 * deployment ID every few hours that changes nothing), and request rates from 3 to 300 per
 * minute. The scenario kind adds one labelled event somewhere between day 2 and day 8, at any
 * hour (nights included). Breaks are labelled afterwards by their realized change of cost per
 * request (see generate.ts), not by a token multiplier.
 *
 * The shapes here are drawn independently of the detector's constants; `holdout` draws another
 * family of shapes (other weekend depth, peak hours, burstiness, growth) for a held-out check.
 */
import type { TokenSample } from './dataset.ts'
import { Rng } from './rng.ts'

export type Kind =
  | 'control'
  | 'growth'
  | 'null_deploy'
  | 'surge'
  | 'spike'
  | 'small_step'
  | 'outage'
  | 'new_endpoint'
  | 'late_events'
  | 'step'
  | 'quiet_step'
  | 'down_step'
  | 'drift'
  | 'model_swap'
  | 'price_change'
  | 'cache_regression'
  | 'retry_storm'
  | 'canary'
  | 'rollback'
  | 'shared_series'
  | 'duplicate_storm'

/** Kinds whose labelled event is a trend break that should page (or, for down_step, notify). */
export const BREAK_KINDS: readonly Kind[] = ['step', 'quiet_step', 'down_step', 'drift', 'model_swap', 'price_change', 'cache_regression', 'retry_storm', 'canary', 'rollback', 'shared_series']

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
  /** minutes over which the new ID rolls out (its share of requests ramps to 1) */
  rollout: number
  marker: boolean
  /** share of requests the new ID holds during [t, t + canaryMs) before the rollout (canaries) */
  canaryShare?: number
  canaryMs?: number
}

export interface Service {
  name: string
  deploys: Deploy[]
  /** share of the endpoint's requests this service makes */
  share: number
}

export interface SeriesSpec {
  team: string
  endpoint: string
  model: Model
  /** model after a model swap (requests of the cause deployment use it) */
  swapTo: Model | null
  tokens: TokenSample
  cacheFrac: number
  rate: number
  amp: number
  peakHour: number
  weekendFactor: number
  growthPerDay: number
  /** lognormal sigma of per-minute rate noise, and the chance of a 3x burst minute */
  burstSigma: number
  burstChance: number
  kind: Kind
  services: Service[]
  /** the labelled event */
  t0: number
  t1: number
  /** intended relative change (the label uses the realized one) */
  change: number
  via: 'input' | 'output'
  causeId: string | null
  inMult: number
  outMult: number
  /** price multiplier (price_change), cache fraction after (cache_regression), error share (retry_storm) */
  priceMult: number
  cacheAfter: number
  errorShare: number
  /** request multiplier (surge), cost multiplier for a spike */
  factor: number
  spikeOnRequests: boolean
  /** the endpoint's first minute of traffic (new endpoints) */
  startAt: number
  /** share of requests arriving late (dropped from windows) during the event */
  lateShare: number
  /**
   * duplicate_storm: during the event the producer sends every call `copies` times and, every
   * minute, resends the calls of the last `replayMinutes` minutes again (a stuck outbox replaying)
   */
  resend: { copies: number; replayMinutes: number } | null
}

/** Monday 2026-01-05 00:00 UTC */
export const START = Date.UTC(2026, 0, 5)
export const DAYS = Number(process.env.EVAL_DAYS ?? 9)
const H = 3_600_000
const M = 60_000

const COUNTS: [Kind, number][] = [
  ['step', 40],
  ['quiet_step', 16],
  ['down_step', 8],
  ['drift', 8],
  ['model_swap', 12],
  ['price_change', 8],
  ['cache_regression', 8],
  ['retry_storm', 8],
  ['canary', 8],
  ['rollback', 8],
  ['shared_series', 8],
  ['small_step', 15],
  ['spike', 12],
  ['surge', 10],
  ['outage', 8],
  ['new_endpoint', 8],
  ['late_events', 8],
  ['null_deploy', 10],
  ['growth', 10],
  ['control', 30],
  // kinds added after the suite above: last, and with their own random streams (generate.ts), so
  // every scenario above stays the same draw for draw
  ['duplicate_storm', 8],
]
const STEP_CHANGES = [0.2, 0.25, 0.3, 0.4, 0.5, 0.7, 0.9, 1.2]

function costShares(tokens: TokenSample, model: Model, cacheFrac: number): { sin: number; sout: number } {
  const inCost = tokens.meanInput * ((1 - cacheFrac) * model.pin + cacheFrac * model.pcache)
  const outCost = tokens.meanOutput * model.pout
  return { sin: inCost / (inCost + outCost), sout: outCost / (inCost + outCost) }
}

function routineDeploys(rng: Rng, name: string, from: number, to: number): Deploy[] {
  const deploys: Deploy[] = []
  let t = from + rng.uniform(1, 4) * H
  let d = 0
  while (t < to) {
    deploys.push({ t: Math.floor(t / M) * M, id: `${name}-r${d++}`, rollout: 1 + rng.int(10), marker: rng.next() < 0.5 })
    t += rng.uniform(2, 8) * H
  }
  return deploys
}

export function buildScenarios(seed: number, code: TokenSample, conv: TokenSample, holdout = false): SeriesSpec[] {
  const rng = new Rng(seed)
  const specs: SeriesSpec[] = []
  const end = START + DAYS * 24 * H
  let seq = 0
  for (const [kind, count] of COUNTS) {
    for (let j = 0; j < count; j++) {
      seq++
      const tokens = rng.next() < 0.5 ? code : conv
      let model = rng.next() < 0.6 ? (MODELS[0] as Model) : rng.pick(MODELS.slice(1))
      if (kind === 'model_swap') model = MODELS[0] as Model
      let cacheFrac = rng.next() < 0.3 ? rng.uniform(0.1, 0.5) : 0
      if (kind === 'cache_regression') cacheFrac = rng.uniform(0.5, 0.8)
      const quiet = kind === 'quiet_step' || (kind !== 'step' && rng.next() < 0.25)
      // 3–300 requests per minute at the daily mean (log-uniform); quiet ones 3–12
      const rate = quiet ? Math.exp(rng.uniform(Math.log(3), Math.log(12))) : Math.exp(rng.uniform(Math.log(10), Math.log(300)))
      const team = `team-${String(Math.floor((seq - 1) / 3)).padStart(3, '0')}`
      const endpoint = `ep-${kind}-${j}`
      const twoServices = kind === 'shared_series' || rng.next() < 0.2
      const services: Service[] = [{ name: `${endpoint}-api`, deploys: routineDeploys(rng, `${endpoint}-api`, START, end), share: twoServices ? rng.uniform(0.4, 0.7) : 1 }]
      if (twoServices) services.push({ name: `${endpoint}-worker`, deploys: routineDeploys(rng, `${endpoint}-worker`, START, end), share: 1 - (services[0] as Service).share })
      // any hour from day 2 to day 8: nights, the weekend and the Monday after it included
      const t0 = Math.floor((START + rng.uniform(30, 8 * 24 - 4) * H) / M) * M
      let change = 0
      if (kind === 'step' || kind === 'shared_series') change = STEP_CHANGES[j % STEP_CHANGES.length] as number
      if (kind === 'quiet_step' || kind === 'rollback') change = rng.uniform(0.3, 1.0)
      if (kind === 'canary') change = rng.uniform(0.35, 0.8)
      if (kind === 'down_step') change = -rng.uniform(0.25, 0.5)
      if (kind === 'small_step') change = rng.uniform(0.1, 0.15)
      if (kind === 'drift') change = 0.4
      if (kind === 'shared_series') change *= 2 // one of two services changes: about half of it is realized
      const { sin, sout } = costShares(tokens, model, cacheFrac)
      let via: 'input' | 'output' = rng.next() < 0.5 ? 'input' : 'output'
      if (change < 0 || (via === 'output' && sout < 0.2) || (via === 'input' && sin < 0.2)) via = sin >= sout ? 'input' : 'output'
      const inMult = via === 'input' ? Math.max(0.05, 1 + change / sin) : 1
      const outMult = via === 'output' ? Math.max(0.05, 1 + change / sout) : 1
      const duration =
        kind === 'drift'
          ? 5 * H
          : kind === 'surge'
            ? rng.uniform(10, 45) * M
            : kind === 'outage'
              ? rng.uniform(30, 120) * M
              : kind === 'rollback'
                ? rng.uniform(40, 90) * M
                : kind === 'duplicate_storm'
                  ? rng.uniform(20, 90) * M
                  : 4 * H
      const t1 = Math.floor((t0 + duration) / M) * M
      let causeId: string | null = null
      const causing: Kind[] = ['step', 'quiet_step', 'down_step', 'small_step', 'null_deploy', 'drift', 'model_swap', 'cache_regression', 'retry_storm', 'canary', 'rollback', 'shared_series']
      if (causing.includes(kind)) {
        const svc = services[0] as Service
        causeId = `${svc.name}-cause`
        // routine deploys of any service too close to the event would make the label ambiguous: keep 20 min clear
        for (const s of services) {
          for (let i = s.deploys.length - 1; i >= 0; i--) {
            const dt = (s.deploys[i] as Deploy).t
            if (dt > t0 - 20 * M && dt < t1 + 20 * M) s.deploys.splice(i, 1)
          }
        }
        const canary = kind === 'canary'
        svc.deploys.push({ t: t0, id: causeId, rollout: canary ? 1 : 1 + rng.int(3), marker: rng.next() < 0.5, ...(canary ? { canaryShare: rng.uniform(0.08, 0.2), canaryMs: rng.uniform(60, 120) * M } : {}) })
        if (kind === 'rollback') svc.deploys.push({ t: t1, id: `${svc.name}-rollback`, rollout: 1, marker: true })
        svc.deploys.sort((a, b) => a.t - b.t)
      }
      const shape = holdout
        ? { amp: rng.uniform(0.5, 0.85), peakHour: rng.uniform(7, 22), weekendFactor: rng.uniform(0.15, 0.5), growth: kind === 'growth' ? rng.uniform(0.02, 0.06) : 0, burstSigma: rng.uniform(0.2, 0.5), burstChance: 0.02 }
        : { amp: rng.uniform(0.3, 0.7), peakHour: rng.uniform(12, 19), weekendFactor: rng.uniform(0.25, 0.7), growth: kind === 'growth' ? rng.uniform(0.01, 0.04) : 0, burstSigma: rng.uniform(0.1, 0.3), burstChance: 0.01 }
      specs.push({
        team,
        endpoint,
        model,
        swapTo: kind === 'model_swap' ? rng.pick(MODELS.slice(1)) : null,
        tokens,
        cacheFrac,
        rate,
        amp: shape.amp,
        peakHour: shape.peakHour,
        weekendFactor: shape.weekendFactor,
        growthPerDay: shape.growth,
        burstSigma: shape.burstSigma,
        burstChance: shape.burstChance,
        kind,
        services,
        t0,
        t1,
        change,
        via,
        causeId,
        inMult: kind === 'step' || kind === 'quiet_step' || kind === 'down_step' || kind === 'small_step' || kind === 'drift' || kind === 'canary' || kind === 'rollback' || kind === 'shared_series' ? inMult : 1,
        outMult: kind === 'step' || kind === 'quiet_step' || kind === 'down_step' || kind === 'small_step' || kind === 'drift' || kind === 'canary' || kind === 'rollback' || kind === 'shared_series' ? outMult : 1,
        priceMult: kind === 'price_change' ? rng.uniform(1.3, 2) : 1,
        cacheAfter: kind === 'cache_regression' ? rng.uniform(0, 0.1) : cacheFrac,
        errorShare: kind === 'retry_storm' ? rng.uniform(0.4, 0.6) : 0.01,
        factor: kind === 'spike' ? 10 : kind === 'surge' ? 3 : 1,
        spikeOnRequests: kind === 'spike' && j % 2 === 1,
        startAt: kind === 'new_endpoint' ? t0 : START,
        lateShare: kind === 'late_events' ? rng.uniform(0.05, 0.3) : 0,
        resend: kind === 'duplicate_storm' ? { copies: 2 + rng.int(19), replayMinutes: 1 + rng.int(10) } : null,
      })
    }
  }
  return specs
}
