/** The ingest API's Prometheus metrics, registered on the process registry (idempotent by name). */
import { counter, histogram, type Registry } from '../../shared/metrics.ts'

export function ingestMetrics(r: Registry) {
  return {
    received: counter(r, 'burnwatch_events_received_total', 'Usage events accepted by the ingest API (the bus acknowledged them)'),
    rejected: counter(r, 'burnwatch_events_rejected_total', 'Usage events and markers refused by the ingest API, by reason (a refused batch counts all its items)', ['reason']),
    deployments: counter(r, 'burnwatch_deployments_received_total', 'Deployment markers accepted by the ingest API'),
    duration: histogram(r, 'burnwatch_ingest_request_duration_seconds', 'Ingest API request duration, by route and status code', ['route', 'status'], [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]),
  }
}
export type IngestMetrics = ReturnType<typeof ingestMetrics>
