/**
 * Realistic usage traffic for the demo, tests and benchmarks: per-request token counts drawn
 * from the Azure LLM inference trace 2023 (CC-BY-4.0, fixtures/azure-llm-trace-sample.csv),
 * a daily traffic shape, routine deployments that change nothing, and optionally one deployment
 * that raises output tokens per request on one endpoint.
 */
import { readFileSync } from 'node:fs'
import type { UsageEvent } from '../../schemas/usage-event.ts'

export interface TokenPair {
  input: number
  output: number
}

const FIXTURE = new URL('../../fixtures/azure-llm-trace-sample.csv', import.meta.url)

export function loadTracePairs(path: string | URL = FIXTURE): TokenPair[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.split(','))
    .filter((c) => c.length >= 3)
    .map((c) => ({ input: Number(c[1]), output: Number(c[2]) }))
    .filter((p) => Number.isFinite(p.input) && Number.isFinite(p.output))
}

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export interface SeriesSpec {
  team: string
  endpoint: string
  model: string
  service: string
  /** mean requests per minute at the daily average */
  perMinute: number
  /** share of input tokens read from the provider's prompt cache */
  cacheShare?: number
}

export interface Regression {
  team: string
  endpoint: string
  /** event time of the deployment, ms */
  at: number
  deployment_id: string
  outputFactor?: number
  inputFactor?: number
}

export interface TrafficOptions {
  start: number
  minutes: number
  series: SeriesSpec[]
  regression?: Regression
  seed?: number
  /** routine deployments (no effect) every this many minutes per team */
  routineEveryMinutes?: number
  pairs?: TokenPair[]
}

/** Summaries over a cached corpus prompt: output tokens are most of the cost, so +40% output tokens is ~+26% cost per request. */
export const DEMO_SERIES: SeriesSpec[] = [
  // 60/min on average: still ≥ 30/min at the nightly low, above the 20 a series needs to page
  { team: 'search', endpoint: 'POST /v1/summarize', model: 'claude-3-5-haiku', service: 'search-api', perMinute: 60, cacheShare: 0.9 },
  { team: 'search', endpoint: 'POST /v1/rerank', model: 'gpt-4o-mini', service: 'search-api', perMinute: 25 },
  { team: 'support', endpoint: 'support-bot', model: 'gpt-4o', service: 'support-bot', perMinute: 20 },
  { team: 'growth', endpoint: 'POST /v1/emails', model: 'claude-3-5-haiku', service: 'growth-worker', perMinute: 20, cacheShare: 0.5 },
]

/** Events in event-time order. Poisson-ish arrivals with a daily shape (peak mid-day). */
export function* generateTraffic(o: TrafficOptions): Generator<UsageEvent> {
  const rand = mulberry32(o.seed ?? 42)
  const pairs = o.pairs ?? loadTracePairs()
  const routine = o.routineEveryMinutes ?? 360
  let n = 0
  for (let m = 0; m < o.minutes; m++) {
    const minuteStart = o.start + m * 60_000
    const hour = new Date(minuteStart).getUTCHours() + new Date(minuteStart).getUTCMinutes() / 60
    const shape = 1 + 0.5 * Math.sin(((hour - 8) / 24) * 2 * Math.PI)
    const batch: UsageEvent[] = []
    for (const s of o.series) {
      const mean = s.perMinute * shape
      const count = Math.max(0, Math.round(mean + (rand() - 0.5) * 2 * Math.sqrt(mean)))
      const reg = o.regression && o.regression.team === s.team && o.regression.endpoint === s.endpoint && minuteStart >= o.regression.at ? o.regression : null
      const routineId = `${s.service}-r${Math.floor(m / routine) + 1}`
      for (let i = 0; i < count; i++) {
        const p = pairs[Math.floor(rand() * pairs.length)]!
        const ts = minuteStart + Math.floor(rand() * 60_000)
        const input = Math.round(p.input * (reg?.inputFactor ?? 1))
        batch.push({
          event_id: `${s.service}-${m}-${i}-${n++}`,
          timestamp: new Date(ts).toISOString(),
          team: s.team,
          endpoint: s.endpoint,
          model: s.model,
          service: s.service,
          deployment_id: reg ? reg.deployment_id : routineId,
          input_tokens: input,
          ...(s.cacheShare ? { cache_read_tokens: Math.round(input * s.cacheShare) } : {}),
          output_tokens: Math.round(p.output * (reg?.outputFactor ?? 1)),
          status: rand() < 0.005 ? 'error' : 'ok',
        })
      }
    }
    batch.sort((a, b) => (a.timestamp < b.timestamp ? -1 : a.timestamp > b.timestamp ? 1 : 0))
    yield* batch
  }
}
