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
})
export type AlertRecord = z.infer<typeof AlertRecord>
