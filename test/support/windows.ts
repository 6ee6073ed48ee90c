/** Fixtures: a closed one-minute window of a gpt-4o-mini series with no errors, cache or late events, by factory. */
import type { WindowRecord } from '../../schemas/window.ts'

export function makeWindow(w: { team: string; endpoint: string; start: number; requests: number; input: number; output: number; cost: number; costSq: number; deployment: string; windowMs?: number }): WindowRecord {
  return {
    team: w.team,
    endpoint: w.endpoint,
    model: 'gpt-4o-mini',
    window_start: new Date(w.start).toISOString(),
    window_end: new Date(w.start + (w.windowMs ?? 60_000)).toISOString(),
    requests: w.requests,
    errors: 0,
    input_tokens: w.input,
    output_tokens: w.output,
    cache_read_tokens: 0,
    cache_write_tokens: 0,
    cost_usd: w.cost,
    cost_sq_sum: w.costSq,
    unpriced_requests: 0,
    late_events: 0,
    deployments: { [w.deployment]: w.requests },
  }
}
