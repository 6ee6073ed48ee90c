/**
 * Prometheus metrics (prom-client). One Registry per process, passed to each component, which
 * registers its own metrics with `counter`/`gauge`/`histogram` below (idempotent by name, so two
 * components may share a metric). `GET /metrics` of the ingest API serves the registry.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

export { Registry }

export function createRegistry(opts: { defaultMetrics?: boolean } = {}): Registry {
  const r = new Registry()
  if (opts.defaultMetrics) collectDefaultMetrics({ register: r, prefix: 'burnwatch_' })
  return r
}

export function counter<L extends string>(r: Registry, name: string, help: string, labelNames: readonly L[] = []): Counter<L> {
  return (r.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter({ name, help, labelNames, registers: [r] })
}

export function gauge<L extends string>(r: Registry, name: string, help: string, labelNames: readonly L[] = []): Gauge<L> {
  return (r.getSingleMetric(name) as Gauge<L> | undefined) ?? new Gauge({ name, help, labelNames, registers: [r] })
}

export function histogram<L extends string>(r: Registry, name: string, help: string, labelNames: readonly L[] = [], buckets?: number[]): Histogram<L> {
  return (r.getSingleMetric(name) as Histogram<L> | undefined) ?? new Histogram({ name, help, labelNames, registers: [r], ...(buckets ? { buckets } : {}) })
}
