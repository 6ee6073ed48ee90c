/**
 * The in-memory identity of a series (team, endpoint, model) within its environment. Length-prefixed, so no choice of
 * names can make two series collide (a separator character could appear inside a name), and
 * cheaper than JSON on the hot path. The Kafka record key is `seriesKey` (shared/producer).
 */
export const seriesId = (s: { team: string; endpoint: string; model: string; environment?: string | undefined }): string => {
  const id = `${s.team.length}:${s.team}${s.endpoint.length}:${s.endpoint}${s.model}`
  // production (or none) keeps the plain form; another environment is a prefix no plain id starts with
  return s.environment === undefined || s.environment === 'production' ? id : `@${s.environment.length}:${s.environment}${id}`
}
