/**
 * Event-time tumbling windows per series, with a watermark per source partition (pure: no I/O,
 * time comes in as arguments, so the live service and the backtest share it).
 *
 * - A window [start, start + windowMs) of a series closes when its partition's watermark
 *   (max event time seen − allowed lateness) reaches the window's end.
 * - Live mode (`idleAdvance`): event time counts at most up to the wall clock, so one event
 *   from a fast clock (accepted up to 5 min ahead) never moves the watermark past now and makes
 *   the partition's later events late; its own window closes when real time gets there.
 * - Live mode (`idleAdvance`): an idle partition's watermark also advances by the wall time
 *   elapsed since its last event, so quiet series still close; replayed history keeps its
 *   event time because the wall time between its events is small. Backtest: event time only.
 * - An event for an already closed window is late: the caller still stores it (totals stay
 *   exact); here it is counted in `late_events` of the series' next emitted window.
 * - Windows without events are not emitted.
 */
import type { WindowRecord } from '../../schemas/window.ts'

export interface WindowerOptions {
  windowMs: number
  allowedLatenessMs: number
  idleAdvance: boolean
}

export interface WindowInput {
  team: string
  endpoint: string
  model: string
  /** absent or 'production' = production; other environments are their own series */
  environment?: string | undefined
  /** event time, ms since epoch */
  ts: number
  cost: number
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
  /** `cost` by token component as priced (pricing.ts Priced): uncached input, cache reads, cache writes, output */
  costInput: number
  costCacheRead: number
  costCacheWrite: number
  costOutput: number
  error: boolean
  /** the call is a resend of an earlier one (isRetry of its attributes, schemas/usage-event.ts); absent = false */
  retry?: boolean | undefined
  unpriced: boolean
  deployment: string | undefined
}

interface Acc {
  series: string
  team: string
  endpoint: string
  model: string
  /** undefined for production */
  environment: string | undefined
  start: number
  requests: number
  errors: number
  retries: number
  input: number
  output: number
  cacheRead: number
  cacheWrite: number
  cost: number
  costSq: number
  costInput: number
  costCacheRead: number
  costCacheWrite: number
  costOutput: number
  unpriced: number
  deployments: Map<string, number>
  /** per deployment ID: [cost, sum of squared per-request cost] */
  deploymentCosts: Map<string, [number, number]>
}

interface PartitionState {
  maxEventTime: number
  lastEventWall: number
  watermark: number
  /** window start → open windows of that start, by series */
  buckets: Map<number, Map<string, Acc>>
  /** pending late counts per series, reported with the series' next window */
  late: Map<string, number>
  /** start of the oldest open window (Infinity when none) */
  oldest: number
}

export interface Windower {
  /** Adds one event; returns false when it is late (its window already closed). */
  add(partition: string, series: string, e: WindowInput, wallNow: number): boolean
  /** Closes the windows the partition's watermark has passed, oldest first. */
  advance(partition: string, wallNow: number): WindowRecord[]
  /** Advances every partition (live mode timer). */
  advanceAll(wallNow: number): WindowRecord[]
  /** Closes every open window (end of a backtest, or a graceful stop). */
  flush(): WindowRecord[]
  /** Forgets a partition (revoked from this consumer). */
  drop(partition: string): void
  watermark(partition: string): number
  /** Whether an event at `ts` would be late, had the partition also seen events up to `maxTs`. */
  isLate(partition: string, ts: number, maxTs: number): boolean
  openWindows(): number
}

function deploymentCostFields(m: Map<string, [number, number]>): { deployment_costs: Record<string, number>; deployment_cost_sq: Record<string, number> } {
  const costs: Record<string, number> = {}
  const sq: Record<string, number> = {}
  for (const [id, [c, q]] of m) {
    costs[id] = c
    sq[id] = q
  }
  return { deployment_costs: costs, deployment_cost_sq: sq }
}

export function createWindower(o: WindowerOptions): Windower {
  const parts = new Map<string, PartitionState>()
  const state = (p: string): PartitionState => {
    let s = parts.get(p)
    if (!s) parts.set(p, (s = { maxEventTime: -Infinity, lastEventWall: 0, watermark: -Infinity, buckets: new Map(), late: new Map(), oldest: Infinity }))
    return s
  }

  // the windows of one start close together: their ISO bounds are formatted once
  let isoStart = NaN
  let isoBounds = ['', '']
  const emit = (s: PartitionState, a: Acc): WindowRecord => {
    const late = s.late.size ? (s.late.get(a.series) ?? 0) : 0
    if (late) s.late.delete(a.series)
    if (a.start !== isoStart) {
      isoStart = a.start
      isoBounds = [new Date(a.start).toISOString(), new Date(a.start + o.windowMs).toISOString()]
    }
    return {
      team: a.team,
      endpoint: a.endpoint,
      model: a.model,
      ...(a.environment !== undefined ? { environment: a.environment } : {}),
      window_start: isoBounds[0]!,
      window_end: isoBounds[1]!,
      requests: a.requests,
      errors: a.errors,
      retries: a.retries,
      input_tokens: a.input,
      output_tokens: a.output,
      cache_read_tokens: a.cacheRead,
      cache_write_tokens: a.cacheWrite,
      cost_usd: a.cost,
      cost_sq_sum: a.costSq,
      unpriced_requests: a.unpriced,
      late_events: late,
      deployments: Object.fromEntries(a.deployments),
      ...(a.deploymentCosts.size > 0 ? deploymentCostFields(a.deploymentCosts) : {}),
      cost_input_usd: a.costInput,
      cost_cache_read_usd: a.costCacheRead,
      cost_cache_write_usd: a.costCacheWrite,
      cost_output_usd: a.costOutput,
    }
  }

  const none: readonly WindowRecord[] = Object.freeze([])
  const close = (s: PartitionState, upTo: number): WindowRecord[] => {
    // hot path (called per event in the backtest): nothing can close before the oldest window ends
    if (s.buckets.size === 0 || s.oldest + o.windowMs > upTo) return none as WindowRecord[]
    const starts = [...s.buckets.keys()].filter((st) => st + o.windowMs <= upTo).sort((x, y) => x - y)
    const out: WindowRecord[] = []
    for (const st of starts) {
      const b = s.buckets.get(st)!
      s.buckets.delete(st)
      const accs = [...b.values()].sort((x, y) => (x.series < y.series ? -1 : x.series > y.series ? 1 : 0))
      for (const a of accs) out.push(emit(s, a))
    }
    s.oldest = Infinity
    for (const st of s.buckets.keys()) if (st < s.oldest) s.oldest = st
    return out
  }

  const advanceState = (s: PartitionState, wallNow: number): WindowRecord[] => {
    let wm = s.maxEventTime - o.allowedLatenessMs
    if (o.idleAdvance && s.lastEventWall > 0) wm += Math.max(0, wallNow - s.lastEventWall)
    if (wm > s.watermark) s.watermark = wm
    return close(s, s.watermark)
  }

  return {
    add(partition, series, e, wallNow) {
      const s = state(partition)
      const start = e.ts - (((e.ts % o.windowMs) + o.windowMs) % o.windowMs)
      // live mode: an event from a fast clock moves the watermark no further than the wall clock
      const t = o.idleAdvance && e.ts > wallNow ? wallNow : e.ts
      if (t > s.maxEventTime) {
        s.maxEventTime = t
        // the event-time watermark moves with every event, so lateness does not depend on batch boundaries
        if (t - o.allowedLatenessMs > s.watermark) s.watermark = t - o.allowedLatenessMs
      }
      s.lastEventWall = wallNow
      if (start + o.windowMs <= s.watermark) {
        s.late.set(series, (s.late.get(series) ?? 0) + 1)
        return false
      }
      let b = s.buckets.get(start)
      if (!b) {
        s.buckets.set(start, (b = new Map()))
        if (start < s.oldest) s.oldest = start
      }
      let a = b.get(series)
      if (!a) {
        a = { series, team: e.team, endpoint: e.endpoint, model: e.model, environment: e.environment === 'production' ? undefined : e.environment, start, requests: 0, errors: 0, retries: 0, input: 0, output: 0, cacheRead: 0, cacheWrite: 0, cost: 0, costSq: 0, costInput: 0, costCacheRead: 0, costCacheWrite: 0, costOutput: 0, unpriced: 0, deployments: new Map(), deploymentCosts: new Map() }
        b.set(series, a)
      }
      a.requests++
      if (e.error) a.errors++
      if (e.retry) a.retries++
      a.input += e.input
      a.output += e.output
      a.cacheRead += e.cacheRead
      a.cacheWrite += e.cacheWrite
      a.cost += e.cost
      a.costSq += e.cost * e.cost
      a.costInput += e.costInput
      a.costCacheRead += e.costCacheRead
      a.costCacheWrite += e.costCacheWrite
      a.costOutput += e.costOutput
      if (e.unpriced) a.unpriced++
      if (e.deployment) {
        a.deployments.set(e.deployment, (a.deployments.get(e.deployment) ?? 0) + 1)
        const dc = a.deploymentCosts.get(e.deployment)
        if (dc) {
          dc[0] += e.cost
          dc[1] += e.cost * e.cost
        } else a.deploymentCosts.set(e.deployment, [e.cost, e.cost * e.cost])
      }
      return true
    },
    advance(partition, wallNow) {
      return advanceState(state(partition), wallNow)
    },
    advanceAll(wallNow) {
      const out: WindowRecord[] = []
      for (const s of parts.values()) out.push(...advanceState(s, wallNow))
      return out
    },
    flush() {
      const out: WindowRecord[] = []
      for (const s of parts.values()) out.push(...close(s, Infinity))
      return out.sort((x, y) => (x.window_start < y.window_start ? -1 : x.window_start > y.window_start ? 1 : 0))
    },
    drop(partition) {
      parts.delete(partition)
    },
    watermark(partition) {
      return state(partition).watermark
    },
    isLate(partition, ts, maxTs) {
      const wm = Math.max(state(partition).watermark, maxTs - o.allowedLatenessMs)
      return ts - (((ts % o.windowMs) + o.windowMs) % o.windowMs) + o.windowMs <= wm
    },
    openWindows() {
      let n = 0
      for (const s of parts.values()) for (const b of s.buckets.values()) n += b.size
      return n
    },
  }
}
