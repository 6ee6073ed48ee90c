/**
 * Caps on the number of series the aggregator keeps windows for (DESIGN.md "Stage contract":
 * memory per series is bounded, and the number of series per team and in all has a cap).
 *
 * A series is active from its first event until it was idle for `idleMs` of wall time. A new
 * series past its team's cap, or past the cap of all series, is counted in its team's overflow
 * series `(team, "(overflow)", "(overflow)")`; a team that has no series yet when the total cap
 * is reached goes to the overflow team `("(overflow)", "(overflow)", "(overflow)")`. Raw events
 * keep their names in usage_events either way (totals stay exact); only the live windows and the
 * detector see the overflow series, so memory stays within the caps whatever names arrive.
 */
export const OVERFLOW = '(overflow)'

export interface SeriesCapsOptions {
  perTeam: number
  total: number
  idleMs: number
}

export interface SeriesGate {
  /** null when `series` of `team` gets its own windows, else the overflow series it is counted in. */
  admit(team: string, series: string, wallNow: number): SeriesName | null
  /** Forgets series idle for longer than idleMs; returns how many left. */
  evictIdle(wallNow: number): number
  /** series with their own windows now */
  active(): number
  /** overflowed events since the last call, by reason, then reset */
  takeOverflow(): { team_cap: number; total_cap: number; teams: string[] }
}

export function createSeriesGate(o: SeriesCapsOptions): SeriesGate {
  /** team → series → wall time last seen */
  const teams = new Map<string, Map<string, number>>()
  let total = 0
  let over = { team_cap: 0, total_cap: 0, teams: new Set<string>() }
  return {
    admit(team, series, wallNow) {
      let t = teams.get(team)
      const seen = t?.get(series)
      if (seen !== undefined) {
        if (seen !== wallNow) t!.set(series, wallNow)
        return null
      }
      if (total >= o.total) {
        over.total_cap++
        if (over.teams.size < 100) over.teams.add(team)
        return { team: t ? team : OVERFLOW, endpoint: OVERFLOW, model: OVERFLOW }
      }
      if (t && t.size >= o.perTeam) {
        over.team_cap++
        if (over.teams.size < 100) over.teams.add(team)
        return { team, endpoint: OVERFLOW, model: OVERFLOW }
      }
      if (!t) teams.set(team, (t = new Map()))
      t.set(series, wallNow)
      total++
      return null
    },
    evictIdle(wallNow) {
      let n = 0
      for (const [team, t] of teams) {
        for (const [s, last] of t) {
          if (wallNow - last > o.idleMs) {
            t.delete(s)
            n++
          }
        }
        if (!t.size) teams.delete(team)
      }
      total -= n
      return n
    },
    active: () => total,
    takeOverflow() {
      const r = { team_cap: over.team_cap, total_cap: over.total_cap, teams: [...over.teams] }
      over = { team_cap: 0, total_cap: 0, teams: new Set() }
      return r
    },
  }
}

export interface SeriesName {
  team: string
  endpoint: string
  model: string
}
