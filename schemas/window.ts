/**
 * Window record (topic `cost.windows`, table `cost_windows`): one record per series per
 * closed event-time window. `cost_sq_sum` is the sum of squared per-request cost so the
 * detector can compute variance without raw events.
 */
import { z } from 'zod'
import { isoTimestamp } from './usage-event.ts'

const nonneg = z.number().min(0)
const count = z.number().int().min(0)

export const WindowRecord = z.strictObject({
  team: z.string().min(1),
  endpoint: z.string().min(1),
  model: z.string().min(1),
  /** absent for production; staging, dev, … are series of their own (DESIGN.md "Usage event v1") */
  environment: z.string().min(1).max(64).optional(),
  window_start: isoTimestamp('window_start'),
  window_end: isoTimestamp('window_end'),
  requests: count,
  errors: count,
  /**
   * requests that were retries: their attributes carry `http.request.resend_count` (OpenTelemetry
   * HTTP semantic conventions) or `retry_attempt` as an integer >= 1. Absent in windows stored
   * before it existed (migration 043).
   */
  retries: count.optional(),
  input_tokens: count,
  output_tokens: count,
  cache_read_tokens: count,
  cache_write_tokens: count,
  cost_usd: nonneg,
  cost_sq_sum: nonneg,
  /** requests of a model the price catalog does not know: counted with cost 0 */
  unpriced_requests: count,
  /** events that arrived after this window had closed (stored in ClickHouse, not in this record) */
  late_events: count,
  /** deployment IDs seen in the window with their request counts */
  deployments: z.record(z.string(), count),
  /**
   * cost (USD) and sum of squared per-request cost of the requests of each deployment ID in
   * `deployments`, so two IDs serving the same minutes (a canary, a rolling deploy) can be
   * compared directly; absent in windows rebuilt from history stored before they existed
   */
  deployment_costs: z.record(z.string(), nonneg).optional(),
  deployment_cost_sq: z.record(z.string(), nonneg).optional(),
  /**
   * `cost_usd` split by token component as the aggregator priced it: uncached input, cache reads,
   * cache writes, output (reasoning included). They add up to `cost_usd` for token-priced events
   * (catalog, override, or a reported cost split at the catalog's ratios); GPU-priced and unpriced
   * events, and reported costs of a model the catalog does not know, have no split, so then the
   * parts add up to less. Absent in windows stored before they existed (migration 042).
   */
  cost_input_usd: nonneg.optional(),
  cost_cache_read_usd: nonneg.optional(),
  cost_cache_write_usd: nonneg.optional(),
  cost_output_usd: nonneg.optional(),
})
export type WindowRecord = z.infer<typeof WindowRecord>
