/**
 * Deployment attribution. Evidence: deployment IDs first seen in the key's windows (with their
 * request counts) and deployment markers for the team (and endpoint, when the marker names one).
 * Candidates are first seen from ATTRIBUTION_LOOKBACK_MS before the change point up to detection.
 * Score = closeness of first sight to the change point (exp(−|Δt|/τ)) × (0.1 + the rise of the
 * deployment's share of requests across the change point); a marker with no traffic evidence
 * scores on closeness alone at a lower weight. A deployment first seen before the look-back
 * counts when its share of requests rose by at least CANARY_MIN_RISE (and CANARY_MIN_RATIO-fold)
 * across the change point (a canary that went to full rollout), scored CANARY_WEIGHT × the rise.
 * Highest score first.
 */
import { ATTRIBUTION_LOOKBACK_MS, ATTRIBUTION_TAU_MS, CANARY_MIN_RATIO, CANARY_MIN_RISE, CANARY_WEIGHT, MAX_DEPLOYMENT_IDS_IN_ALERT, MAX_TRACKED_DEPLOYMENTS } from './params.ts'
import type { WindowRing } from './ring.ts'

export interface MarkerRef {
  id: string
  t: number
  endpoint: string | undefined
}

/** First/last sight of deployment IDs in one key, bounded (least recently seen evicted). */
export class DeploymentSightings {
  private readonly seen = new Map<string, { first: number; last: number }>()

  record(deployments: Record<string, number> | null, t: number): void {
    if (!deployments) return
    for (const id in deployments) {
      const s = this.seen.get(id)
      if (s) s.last = t
      else {
        this.seen.set(id, { first: t, last: t })
        if (this.seen.size > MAX_TRACKED_DEPLOYMENTS) this.evict()
      }
    }
  }

  private evict(): void {
    let oldest: string | undefined
    let oldestT = Infinity
    for (const [id, s] of this.seen) {
      if (s.last < oldestT) {
        oldestT = s.last
        oldest = id
      }
    }
    if (oldest !== undefined) this.seen.delete(oldest)
  }

  firstSeen(id: string): number | undefined {
    return this.seen.get(id)?.first
  }

  entries(): IterableIterator<[string, { first: number; last: number }]> {
    return this.seen.entries()
  }
}

function shares(ring: WindowRing, from: number, to: number): { byId: Map<string, number>; total: number } {
  const byId = new Map<string, number>()
  let total = 0
  for (let i = Math.max(0, from); i < to; i++) {
    const d = ring.deployments(i)
    if (!d) continue
    for (const id in d) {
      const n = d[id] ?? 0
      byId.set(id, (byId.get(id) ?? 0) + n)
      total += n
    }
  }
  return { byId, total }
}

/**
 * The ranked deployment IDs, and when the first of them is a canary (first seen before the
 * look-back, its share risen across the change point) the time it was first seen: the break
 * began with the canary, at its share of the traffic.
 */
export function attribute(
  ring: WindowRing,
  sightings: DeploymentSightings,
  markers: readonly MarkerRef[],
  endpoint: string | null,
  changePoint: number,
  detectedAt: number,
): { ids: string[]; canaryFirstSeen: number | null } {
  const canaries = new Map<string, number>()
  const lo = changePoint - ATTRIBUTION_LOOKBACK_MS
  const cpIdx = ring.indexAtOrAfter(changePoint)
  const after = shares(ring, cpIdx, ring.size)
  const before = shares(ring, ring.indexAtOrAfter(lo), cpIdx)
  const scores = new Map<string, number>()
  const closeness = (t: number): number => Math.exp(-Math.abs(t - changePoint) / ATTRIBUTION_TAU_MS)
  for (const [id, s] of sightings.entries()) {
    if (s.first > detectedAt) continue
    if (s.first < lo) {
      // first seen before the look-back: a candidate only when its share of traffic rose across
      // the change point (a canary or a slow rolling deploy that completed)
      // its share from its first sight (as far back as the ring reaches) to the change point: a
      // canary serves a small share there (also when the change point falls mid-rollout), a
      // deployment that had completed its rollout long before serves all of it
      const since = shares(ring, ring.indexAtOrAfter(s.first), cpIdx)
      const a = after.total > 0 ? (after.byId.get(id) ?? 0) / after.total : 0
      const b = since.total > 0 ? (since.byId.get(id) ?? 0) / since.total : 0
      if (a - b >= CANARY_MIN_RISE && a >= CANARY_MIN_RATIO * b) {
        scores.set(id, CANARY_WEIGHT * (a - b))
        canaries.set(id, s.first)
      }
      continue
    }
    const a = after.total > 0 ? (after.byId.get(id) ?? 0) / after.total : 0
    const b = before.total > 0 ? (before.byId.get(id) ?? 0) / before.total : 0
    scores.set(id, closeness(s.first) * (0.1 + Math.max(0, a - b)))
  }
  for (const m of markers) {
    if (m.t < lo || m.t > detectedAt) continue
    if (endpoint !== null && m.endpoint !== undefined && m.endpoint !== endpoint) continue
    const fromTraffic = scores.get(m.id)
    const fromMarker = 0.05 * closeness(m.t)
    scores.set(m.id, Math.max(fromTraffic ?? 0, fromMarker) + (fromTraffic !== undefined ? 0.01 * closeness(m.t) : 0))
  }
  const ids = [...scores.entries()]
    .sort((x, y) => y[1] - x[1] || (x[0] < y[0] ? -1 : 1))
    .slice(0, MAX_DEPLOYMENT_IDS_IN_ALERT)
    .map(([id]) => id)
  const top = ids[0]
  return { ids, canaryFirstSeen: top !== undefined ? (canaries.get(top) ?? null) : null }
}
