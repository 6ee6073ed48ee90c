/** Fixtures: alert records from a factory (a +41.7% cost-per-request break of search's summarize endpoint). */
import { AlertRecord } from '../../schemas/alert.ts'

export function makeAlert(over: Partial<AlertRecord> = {}): AlertRecord {
  return AlertRecord.parse({
    alert_id: 'a-1',
    status: 'firing',
    team: 'search',
    endpoint: 'POST /v1/summarize',
    model: 'gpt-4o-mini',
    signal: 'cost_per_request',
    direction: 'up',
    baseline: 0.0012,
    current: 0.0017,
    change_pct: 41.7,
    started_at: '2026-11-22T10:03:00.000Z',
    detected_at: '2026-11-22T10:09:00.000Z',
    deployment_ids: ['deploy-2026-11-22.3', 'deploy-2026-11-21.9'],
    drivers: { input_tokens_per_request: 3.5, output_tokens_per_request: 38.2, cache_reads: 0, price: 0, error_share: -0.2, primary: 'output_tokens_per_request' },
    severity: 'critical',
    monthly_impact_usd: 12_345.6,
    ...over,
  })
}
