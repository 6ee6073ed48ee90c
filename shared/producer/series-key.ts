/**
 * The series key `(team, endpoint, model)` within its environment as it travels on Kafka: the record key of every
 * usage event, so one series stays on one partition (in order) for the aggregator.
 *
 * Format: the JSON array `["team","endpoint","model"]`, plus `"environment"` when not production. JSON is unambiguous whatever characters
 * the three strings hold (a separator character could also occur inside them) and stays
 * readable in kafka-console-consumer.
 */
export interface SeriesId {
  team: string
  endpoint: string
  model: string
  /** absent or 'production' for production */
  environment?: string | undefined
}

/**
 * Production keeps the three-element key (so its partitioning is what it always was); another
 * environment is a fourth element, so staging is a series, and a partition key, of its own.
 */
export function seriesKey(e: SeriesId): string {
  return e.environment === undefined || e.environment === 'production' ? JSON.stringify([e.team, e.endpoint, e.model]) : JSON.stringify([e.team, e.endpoint, e.model, e.environment])
}

/** The inverse of `seriesKey`; null when `key` is not a series key. */
export function parseSeriesKey(key: string): SeriesId | null {
  let v: unknown
  try {
    v = JSON.parse(key)
  } catch {
    return null
  }
  if (!Array.isArray(v) || (v.length !== 3 && v.length !== 4) || !v.every((s) => typeof s === 'string')) return null
  const [team, endpoint, model, environment] = v as [string, string, string, string | undefined]
  return environment === undefined ? { team, endpoint, model } : { team, endpoint, model, environment }
}
