/**
 * Decoding of usage.events records: bad input is data. A record that is not JSON or not a valid
 * usage event becomes a dead-letter entry with the reason; it never throws and never stalls
 * the partition.
 */
import { UsageEventLenient, UsageEventStrict, type UsageEvent } from '../../schemas/usage-event.ts'
import { describeIssues } from '../../schemas/issues.ts'
import { fastUsageEvent } from '../../schemas/fast-usage-event.ts'

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
