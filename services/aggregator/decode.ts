/**
 * Decoding of usage.events records: bad input is data. A record that is not JSON or not a valid
 * usage event becomes a dead-letter entry with the reason; it never throws and never stalls
 * the partition.
 */
import { UsageEventLenient, UsageEventStrict, type UsageEvent } from '../../schemas/usage-event.ts'
import { describeIssues } from '../../schemas/issues.ts'
import { fastUsageEvent } from '../../schemas/fast-usage-event.ts'
import type { WindowInput } from './windows.ts'
import type { Priced } from './pricing.ts'

export type Decoded = { ok: true; event: UsageEvent; ts: number } | { ok: false; reason: string }

export function decodeUsageEvent(value: string, strict = false, nowMs = Date.now()): Decoded {
  let raw: unknown
  try {
    raw = JSON.parse(value)
  } catch (err) {
    return { ok: false, reason: `not valid JSON: ${(err as Error).message}` }
  }
  const fast = fastUsageEvent(raw, strict, nowMs)
  if (fast) return { ok: true, event: fast.event, ts: fast.ts }
  const r = (strict ? UsageEventStrict : UsageEventLenient).safeParse(raw)
  if (!r.success) return { ok: false, reason: `invalid usage event: ${describeIssues(r.error)}` }
  return { ok: true, event: r.data, ts: Date.parse(r.data.timestamp) }
}

export { seriesId } from '../../schemas/series.ts'

/** The windower's view of a priced event; fills `into` when given (no allocation in hot loops). */
export function windowInput(e: UsageEvent, ts: number, priced: Priced, into?: WindowInput): WindowInput {
  const w = into ?? ({} as WindowInput)
  w.team = e.team
  w.endpoint = e.endpoint
  w.model = e.model
  w.ts = ts
  w.cost = priced.cost
  w.input = e.input_tokens
  w.output = e.output_tokens
  w.cacheRead = e.cache_read_tokens ?? 0
  w.cacheWrite = e.cache_write_tokens ?? 0
  w.error = e.status === 'error'
  w.unpriced = priced.source === 'unpriced'
  w.deployment = e.deployment_id
  return w
}
