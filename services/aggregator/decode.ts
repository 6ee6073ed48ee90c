/**
 * Decoding of usage.events records: bad input is data. A record that is not JSON or not a valid
 * usage event becomes a dead-letter entry with the reason; it never throws and never stalls
 * the partition.
 */
import { UsageEventLenient, UsageEventStrict, type UsageEvent } from '../../schemas/usage-event.ts'
import { describeIssues } from '../../schemas/issues.ts'
import type { WindowInput } from './windows.ts'
import type { Priced } from './pricing.ts'

export type Decoded = { ok: true; event: UsageEvent } | { ok: false; reason: string }

export function decodeUsageEvent(value: string, strict = false): Decoded {
  let raw: unknown
  try {
    raw = JSON.parse(value)
  } catch (err) {
    return { ok: false, reason: `not valid JSON: ${(err as Error).message}` }
  }
  const r = (strict ? UsageEventStrict : UsageEventLenient).safeParse(raw)
  if (!r.success) return { ok: false, reason: `invalid usage event: ${describeIssues(r.error)}` }
  return { ok: true, event: r.data }
}

export const seriesId = (e: { team: string; endpoint: string; model: string }) => `${e.team}\u0000${e.endpoint}\u0000${e.model}`

export function windowInput(e: UsageEvent, ts: number, priced: Priced): WindowInput {
  return {
    team: e.team,
    endpoint: e.endpoint,
    model: e.model,
    ts,
    cost: priced.cost,
    input: e.input_tokens,
    output: e.output_tokens,
    cacheRead: e.cache_read_tokens ?? 0,
    cacheWrite: e.cache_write_tokens ?? 0,
    error: e.status === 'error',
    unpriced: priced.source === 'unpriced',
    deployment: e.deployment_id,
  }
}
