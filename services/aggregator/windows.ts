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
import { seriesId } from '../../schemas/series.ts'

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

/*
 * An open window is a row of its bucket (the open windows of one start in one partition): its
 * sums are NUMS doubles of the bucket's slab, its strings STRS slots of the bucket's string
 * array. One object per window (plus a box per double field, and two Maps for its deployment
 * IDs) made the windower most of the aggregator's memory per active series; a row is 136 B of
 * slab and 40 B of pointers, and a closed bucket is dropped whole.
 */
const REQUESTS = 0
const ERRORS = 1
const RETRIES = 2
const INPUT = 3
const OUTPUT = 4
const CACHE_READ = 5
const CACHE_WRITE = 6
const COST = 7
const COST_SQ = 8
const COST_INPUT = 9
const COST_CACHE_READ = 10
const COST_CACHE_WRITE = 11
const COST_OUTPUT = 12
const UNPRICED = 13
/** requests, cost and sum of squared per-request cost of the window's first deployment ID */
const DEP_REQUESTS = 14
const DEP_COST = 15
const DEP_COST_SQ = 16
const NUMS = 17
/**
 * team, endpoint, model, environment (undefined for production), first deployment ID. The names
 * are only kept when the series is not seriesId of them (a caller with keys of its own; then the
 * team is never undefined): the aggregator's series are, and their names are read back from the
 * series at close, so a window does not hold three more strings of its first event (each event's
 * own copies, from JSON.parse).
 */
const TEAM = 0
const ENDPOINT = 1
const MODEL = 2
const ENVIRONMENT = 3
const DEPLOYMENT = 4
const STRS = 5

interface Bucket {
  /** series → its row */
  rows: Map<string, number>
  nums: Float64Array
  strs: (string | undefined)[]
  /**
   * the deployment IDs after a row's first, by row: ID → [requests, cost, sum of squared
   * per-request cost]. Rare (two IDs serving one minute: a canary, a rolling deploy), so a Map
   * only where it happens.
   */
  more: Map<number, Map<string, [number, number, number]>> | null
}

const newBucket = (): Bucket => ({ rows: new Map(), nums: new Float64Array(16 * NUMS), strs: [], more: null })

/** The inverse of seriesId (schemas/series.ts), for a string known to be one: [team, endpoint, model, environment]. */
function namesOf(id: string): [string, string, string, string | undefined] {
  let i = 0
  let environment: string | undefined
  const field = () => {
    const colon = id.indexOf(':', i)
    const end = colon + 1 + Number(id.slice(i, colon))
    const v = id.slice(colon + 1, end)
    i = end
    return v
  }
  if (id.startsWith('@')) {
    i = 1
    environment = field()
  }
  const team = field()
  const endpoint = field()
  return [team, endpoint, id.slice(i), environment]
}

interface PartitionState {
  maxEventTime: number
  lastEventWall: number
  watermark: number
  /** window start → its open windows */
  buckets: Map<number, Bucket>
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

/** deployment_costs and deployment_cost_sq of a window with at least one deployment ID, in the IDs' order of arrival */
function deploymentCostFields(first: string, cost: number, costSq: number, more: Map<string, [number, number, number]> | undefined): { deployment_costs: Record<string, number>; deployment_cost_sq: Record<string, number> } {
  const costs: Record<string, number> = {}
  const sq: Record<string, number> = {}
  costs[first] = cost
  sq[first] = costSq
  if (more) {
    for (const [id, [, c, q]] of more) {
      costs[id] = c
      sq[id] = q
    }
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
  const emit = (s: PartitionState, start: number, b: Bucket, series: string, r: number): WindowRecord => {
    const late = s.late.size ? (s.late.get(series) ?? 0) : 0
    if (late) s.late.delete(series)
    if (start !== isoStart) {
      isoStart = start
      isoBounds = [new Date(start).toISOString(), new Date(start + o.windowMs).toISOString()]
    }
    const n = b.nums
    const i = r * NUMS
    const j = r * STRS
    const [team, endpoint, model, environment] = b.strs[j + TEAM] !== undefined ? [b.strs[j + TEAM]!, b.strs[j + ENDPOINT]!, b.strs[j + MODEL]!, b.strs[j + ENVIRONMENT]] : namesOf(series)
    const first = b.strs[j + DEPLOYMENT]
    const more = first === undefined ? undefined : b.more?.get(r)
    return {
      team,
      endpoint,
      model,
      ...(environment !== undefined ? { environment } : {}),
      window_start: isoBounds[0]!,
      window_end: isoBounds[1]!,
      requests: n[i + REQUESTS]!,
      errors: n[i + ERRORS]!,
      retries: n[i + RETRIES]!,
      input_tokens: n[i + INPUT]!,
      output_tokens: n[i + OUTPUT]!,
      cache_read_tokens: n[i + CACHE_READ]!,
      cache_write_tokens: n[i + CACHE_WRITE]!,
      cost_usd: n[i + COST]!,
      cost_sq_sum: n[i + COST_SQ]!,
      unpriced_requests: n[i + UNPRICED]!,
      late_events: late,
      deployments: first === undefined ? {} : more ? Object.fromEntries([[first, n[i + DEP_REQUESTS]!], ...[...more].map(([id, [k]]) => [id, k])]) : { [first]: n[i + DEP_REQUESTS]! },
      ...(first !== undefined ? deploymentCostFields(first, n[i + DEP_COST]!, n[i + DEP_COST_SQ]!, more) : {}),
      cost_input_usd: n[i + COST_INPUT]!,
      cost_cache_read_usd: n[i + COST_CACHE_READ]!,
      cost_cache_write_usd: n[i + COST_CACHE_WRITE]!,
      cost_output_usd: n[i + COST_OUTPUT]!,
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
      const rows = [...b.rows].sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0))
      for (const [series, r] of rows) out.push(emit(s, st, b, series, r))
    }
    s.oldest = Infinity
    for (const st of s.buckets.keys()) if (st < s.oldest) s.oldest = st
    return out
  }

  /** Opens the series' window in bucket `b`: its row, zeroed, with the names unless the series gives them back. */
  const open = (b: Bucket, series: string, e: WindowInput): number => {
    const r = b.rows.size
    if ((r + 1) * NUMS > b.nums.length) {
      const nums = new Float64Array(b.nums.length * 2)
      nums.set(b.nums)
      b.nums = nums
    }
    b.rows.set(series, r)
    const environment = e.environment === 'production' ? undefined : e.environment
    if (series === seriesId(e)) b.strs.push(undefined, undefined, undefined, undefined, undefined)
    else b.strs.push(e.team, e.endpoint, e.model, environment, undefined)
    return r
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
        s.buckets.set(start, (b = newBucket()))
        if (start < s.oldest) s.oldest = start
      }
      let r = b.rows.get(series)
      if (r === undefined) r = open(b, series, e)
      const n = b.nums
      const i = r * NUMS
      const cost = e.cost
      n[i + REQUESTS]!++
      if (e.error) n[i + ERRORS]!++
      if (e.retry) n[i + RETRIES]!++
      n[i + INPUT]! += e.input
      n[i + OUTPUT]! += e.output
      n[i + CACHE_READ]! += e.cacheRead
      n[i + CACHE_WRITE]! += e.cacheWrite
      n[i + COST]! += cost
      n[i + COST_SQ]! += cost * cost
      n[i + COST_INPUT]! += e.costInput
      n[i + COST_CACHE_READ]! += e.costCacheRead
      n[i + COST_CACHE_WRITE]! += e.costCacheWrite
      n[i + COST_OUTPUT]! += e.costOutput
      if (e.unpriced) n[i + UNPRICED]!++
      const d = e.deployment
      if (d) {
        const j = r * STRS + DEPLOYMENT
        const first = b.strs[j]
        if (first === undefined) {
          // most windows see one deployment ID: it is kept in the row
          b.strs[j] = d
          n[i + DEP_REQUESTS] = 1
          n[i + DEP_COST] = cost
          n[i + DEP_COST_SQ] = cost * cost
        } else if (first === d) {
          n[i + DEP_REQUESTS]!++
          n[i + DEP_COST]! += cost
          n[i + DEP_COST_SQ]! += cost * cost
        } else {
          b.more ??= new Map()
          let m = b.more.get(r)
          if (!m) b.more.set(r, (m = new Map()))
          const v = m.get(d)
          if (v) {
            v[0]++
            v[1] += cost
            v[2] += cost * cost
          } else m.set(d, [1, cost, cost * cost])
        }
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
      for (const s of parts.values()) for (const b of s.buckets.values()) n += b.rows.size
      return n
    },
  }
}
