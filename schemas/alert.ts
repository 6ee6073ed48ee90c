/** Alert record (topic `cost.alerts`, table `alerts`, backtest output): one per state change. */
import { z } from 'zod'
import { isoTimestamp } from './usage-event.ts'

export const Drivers = z.strictObject({
  /** each: the share (in % points of the cost-per-request change) explained by this driver */
  input_tokens_per_request: z.number(),
  output_tokens_per_request: z.number(),
  cache_reads: z.number(),
  price: z.number(),
  error_share: z.number(),
  /** endpoint-level alerts: the part explained by traffic moving between models (absent elsewhere) */
  model_mix: z.number().optional(),
  /** the driver with the largest absolute contribution */
  primary: z.enum(['input_tokens_per_request', 'output_tokens_per_request', 'cache_reads', 'price', 'error_share', 'model_mix', 'volume']),
})
export type Drivers = z.infer<typeof Drivers>

/**
 * A break paged by the direct canary comparison: while an older and a newer deployment ID served
 * the same minutes, the newer one cost more per request ("caught in canary: r778, 12% of traffic,
 * +45% per request").
 */
export const CanaryDetails = z.strictObject({
  /** the newer (canary) deployment ID */
  deployment_id: z.string().min(1),
  /** the older ID it was compared with over the minutes both served */
  compared_with: z.string().min(1),
  /** the newer ID's share of the requests of those minutes, in % */
  traffic_pct: z.number().min(0).max(100),
  /** its cost per request against the older ID's, in % */
  change_pct: z.number(),
})
export type CanaryDetails = z.infer<typeof CanaryDetails>

export const AlertRecord = z.strictObject({
  alert_id: z.string().min(1),
  status: z.enum(['firing', 'updated', 'resolved']),
  team: z.string().min(1),
  endpoint: z.string().nullable(),
  model: z.string().nullable(),
  /** absent for production; alerts of another environment carry it (and `@environment` in alert_id) */
  environment: z.string().min(1).max(64).optional(),
  signal: z.enum(['cost_per_request', 'burn_rate', 'budget_burn']),
  direction: z.enum(['up', 'down']),
  baseline: z.number(),
  current: z.number(),
  change_pct: z.number(),
  started_at: isoTimestamp('started_at'),
  detected_at: isoTimestamp('detected_at'),
  deployment_ids: z.array(z.string()),
  drivers: Drivers,
  severity: z.enum(['info', 'warning', 'critical']),
  monthly_impact_usd: z.number(),
  /** present when the direct canary comparison paged the break (cost-per-request alerts of a series) */
  canary: CanaryDetails.optional(),
})
export type AlertRecord = z.infer<typeof AlertRecord>
