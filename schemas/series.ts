/**
 * The in-memory identity of a series (team, endpoint, model). Length-prefixed, so no choice of
 * names can make two series collide (a separator character could appear inside a name), and
 * cheaper than JSON on the hot path. The Kafka record key is `seriesKey` (shared/producer).
 */
export const seriesId = (s: { team: string; endpoint: string; model: string }): string => `${s.team.length}:${s.team}${s.endpoint.length}:${s.endpoint}${s.model}`
