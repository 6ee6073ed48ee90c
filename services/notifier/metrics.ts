/** The notifier's Prometheus metrics, registered on the registry passed in (shared/metrics.ts). */
import { counter, type Registry } from '../../shared/metrics.ts'

export function notifierMetrics(registry: Registry) {
  return {
    /** one per alert state change: delivered | silenced | failed | duplicate (skipped, already delivered) */
    deliveries: counter(registry, 'burnwatch_slack_deliveries_total', 'Alert state changes handled by the notifier, by outcome (delivered, silenced, failed, duplicate)', ['outcome']),
    /** Slack calls retried, by reason: rate_limited | server_error | network */
    retries: counter(registry, 'burnwatch_slack_retries_total', 'Slack Web API calls retried, by reason', ['reason', 'method']),
    /** permanent Slack refusals, by Slack error code */
    permanentErrors: counter(registry, 'burnwatch_slack_permanent_errors_total', 'Pages given up because Slack refused them permanently, by Slack error code', ['error']),
    /** alert records that failed validation and were skipped */
    invalidAlerts: counter(registry, 'burnwatch_notifier_invalid_alerts_total', 'Alert records on the alerts topic that failed validation and were skipped'),
  }
}

export type NotifierMetrics = ReturnType<typeof notifierMetrics>
