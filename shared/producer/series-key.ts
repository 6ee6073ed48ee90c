/**
 * The series key `(team, endpoint, model)` as it travels on Kafka: the record key of every
 * usage event, so one series stays on one partition (in order) for the aggregator.
 *
 * Format: the JSON array `["team","endpoint","model"]`. JSON is unambiguous whatever characters
 * the three strings hold (a separator character could also occur inside them) and stays
 * readable in kafka-console-consumer.
 */
export interface SeriesId {
  team: string
  endpoint: string
  model: string
}

export function seriesKey(e: SeriesId): string {
  return JSON.stringify([e.team, e.endpoint, e.model])
}

/** The inverse of `seriesKey`; null when `key` is not a series key. */
export function parseSeriesKey(key: string): SeriesId | null {
  let v: unknown
  try {
    v = JSON.parse(key)
  } catch {
    return null
  }
  if (!Array.isArray(v) || v.length !== 3 || !v.every((s) => typeof s === 'string')) return null
  const [team, endpoint, model] = v as [string, string, string]
  return { team, endpoint, model }
}
