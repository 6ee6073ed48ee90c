/**
 * Pure detection core (no I/O, no clock): fed closed windows and deployment markers in event
 * time, returns alert state changes. The live detector service and the backtest both use it.
 *
 * Windows of one series must arrive in order; windows of different series may interleave in
 * any way (several partitions, a replay running one partition ahead): the alerts are the same
 * as for global event-time order as long as no series lags another of its team (or, for teams
 * whose members all went quiet, any series) by more than TEAM_MAX_SKEW_WINDOWS of event time.
 * Only the call that returns a team alert may differ. Endpoint rollups (an endpoint across its
 * models) hold back at most ENDPOINT_MAX_SKEW_WINDOWS and take a new model from its first
 * window: their alerts are the same when the series of one endpoint lag each other by less than
 * that, and a new model's first windows are not more than TEAM_FINALIZE_LAG_WINDOWS behind. Deployment markers are kept by their
 * timestamps; a marker counts for an alert if it arrived before the alert was built.
 */
import type { AlertRecord } from '../../../schemas/alert.ts'
import type { DeploymentMarker } from '../../../schemas/deployment.ts'
import type { WindowRecord } from '../../../schemas/window.ts'
import { seriesId } from '../../../schemas/series.ts'
import { thresholdFor, type DetectorConfig } from './config.ts'
import { KeyTracker, type KeyWindow } from './key.ts'
import { ENDPOINT_MAX_SKEW_WINDOWS, IDLE_EVICT_MS, MAX_GAP_FILL_WINDOWS, TEAM_FINALIZE_LAG_WINDOWS, TEAM_MAX_SKEW_WINDOWS } from './params.ts'
import { newMember, TeamState, type Member } from './team.ts'
import { toMs } from './time.ts'

export { defaultDetectorConfig, type DetectorConfig, type DetectorTeamConfig } from './config.ts'

export interface DetectorCore {
  /** Feed one closed window; returns the alert state changes it produced. Redelivered or older windows of a series are ignored. */
  onWindow(w: WindowRecord): AlertRecord[]
  onDeployment(m: DeploymentMarker): void
  /** End of input (backtest, replay): finalizes every pending team minute up to the newest window; returns any alerts. */
  flush(): AlertRecord[]
  /** Keys held: series, endpoint rollups and teams (series and endpoints idle for IDLE_EVICT_MS leave). */
  size(): { series: number; endpoints: number; teams: number }
}

interface Series {
  key: KeyTracker
  team: TeamState
  member: Member
  /** the series' endpoint across its models, and the series as its member */
  group: TeamState
  groupMember: Member
}

export function createDetectorCore(config: DetectorConfig): DetectorCore {
  const windowMs = config.windowMs
  const teamConfigs = new Map(config.teams.map((t) => [t.name, t]))
  const series = new Map<string, Series>()
  const teams = new Map<string, TeamState>()
  /** endpoint rollups, by team and endpoint */
  const groups = new Map<string, TeamState>()
  /** newest window start of any series */
  let maxT = -Infinity

  function teamState(name: string): TeamState {
    let t = teams.get(name)
    if (!t) {
      const tc = teamConfigs.get(name)
      t = new TeamState(
        name,
        {
          windowMs,
          minRequests: config.minRequestsPerWindow,
          resolveWindows: config.resolveWindows,
          thrCpr: thresholdFor(config, tc, 'cost_per_request'),
          thrBurn: thresholdFor(config, tc, 'burn_rate'),
        },
        tc?.monthlyBudgetUsd,
      )
      teams.set(name, t)
    }
    return t
  }

  function groupState(team: TeamState, endpoint: string, environment: string | undefined): TeamState {
    const id = JSON.stringify([team.name, endpoint, environment ?? 'production'])
    let g = groups.get(id)
    if (!g) {
      const { windowMs: wm, minRequests, resolveWindows, thrCpr, thrBurn } = team.seriesCtx
      g = new TeamState(team.name, { windowMs: wm, minRequests, resolveWindows, thrCpr, thrBurn }, undefined, { name: endpoint, markers: team.markers })
      groups.set(id, g)
    }
    return g
  }

  /** Processes one window of a series, reporting its cost-per-request alert opening/closing to the team at that window's time. */
  function step(s: Series, kw: KeyWindow, out: AlertRecord[]): void {
    const wasOpen = s.key.cprAlert !== null
    s.key.process(kw, s.team.seriesCtx, out)
    const isOpen = s.key.cprAlert !== null
    if (isOpen !== wasOpen) {
      s.team.memberCpr(s.member, kw.t, isOpen ? 1 : -1)
      s.group.memberCpr(s.groupMember, kw.t, isOpen ? 1 : -1)
    }
  }

  /** Drops series silent for IDLE_EVICT_MS of event time (unless an alert of theirs is open), and endpoint rollups left without series. */
  function evictIdle(): void {
    const before = maxT - IDLE_EVICT_MS
    const live = new Set<TeamState>()
    for (const [id, s] of series) {
      if (s.key.lastT < before && s.key.cprAlert === null && s.key.burnAlert === null) series.delete(id)
      else live.add(s.group)
    }
    for (const [id, g] of groups) if (!live.has(g) && g.key.cprAlert === null && !g.hasPending()) groups.delete(id)
  }

  return {
    onWindow(w) {
      const t = toMs(w.window_start)
      const id = seriesId(w)
      let s = series.get(id)
      if (!s) {
        const team = teamState(w.team)
        s = { key: new KeyTracker(w.team, w.endpoint, w.model), team, member: newMember(), group: groupState(team, w.endpoint, w.environment), groupMember: newMember() }
        s.key.endpointRing = s.group.key.ring
        series.set(id, s)
      }
      const key = s.key
      if (t <= key.lastT) return []
      const out: AlertRecord[] = []
      const team = s.team
      const group = s.group
      team.memberWindow(s.member, t)
      group.memberWindow(s.groupMember, t)
      if (Number.isFinite(key.lastT)) {
        const missing = Math.round((t - key.lastT) / windowMs) - 1
        if (missing > MAX_GAP_FILL_WINDOWS) key.restartEvidence()
        else {
          // a gap while a sibling series of the endpoint carried on: the traffic was elsewhere
          if (missing > 0 && group.othersActiveAfter(s.groupMember, key.lastT)) key.markMoved(key.lastT + windowMs, t)
          for (let m = 1; m <= missing; m++) {
            const tm = key.lastT + windowMs
            step(s, { t: tm, n: 0, c: 0, q: 0, i: 0, o: 0, k: 0, e: 0, deps: null }, out)
            if (key.burnForTeam > 0) team.add(s.member, tm, null, { xc: 0, xv: 0, bx: key.burnForTeam, bxv: key.burnVarForTeam })
            group.add(s.groupMember, tm, null, { xc: 0, xv: 0, bx: 0, bxv: 0 })
          }
        }
      }
      const { requests: n, cost_usd: c, cost_sq_sum: q } = w
      step(
        s,
        {
          t,
          n,
          c,
          q,
          i: w.input_tokens,
          o: w.output_tokens,
          k: w.cache_read_tokens,
          e: w.errors,
          kw: w.cache_write_tokens,
          // cost by token component (absent in windows stored before they existed: drivers then use catalog rates)
          cu: w.cost_input_usd ?? 0,
          cr: w.cost_cache_read_usd ?? 0,
          cw: w.cost_cache_write_usd ?? 0,
          co: w.cost_output_usd ?? 0,
          // retries (absent in windows stored before migration 043)
          r: w.retries ?? 0,
          deps: w.deployments,
          depCost: w.deployment_costs ?? null,
          depSq: w.deployment_cost_sq ?? null,
        },
        out,
      )
      const x = key.expectation(n, c, q)
      team.add(s.member, t, w, { xc: x.xc, xv: x.xv, bx: key.burnForTeam, bxv: key.burnVarForTeam })
      group.add(s.groupMember, t, w, { xc: 0, xv: 0, bx: 0, bxv: 0 })
      group.finalize(group.readyUntil(), out)
      team.finalize(team.readyUntil(), out)
      if (t > maxT) {
        const prevMinute = Math.floor(maxT / windowMs)
        maxT = t
        // every team is final TEAM_MAX_SKEW_WINDOWS + lag behind the newest window of any series
        // (a team whose members all went quiet still advances); once per minute of event time
        if (Math.floor(t / 3_600_000) !== Math.floor(prevMinute * windowMs / 3_600_000)) evictIdle()
        if (Math.floor(t / windowMs) !== prevMinute) {
          const until = maxT - (TEAM_MAX_SKEW_WINDOWS + TEAM_FINALIZE_LAG_WINDOWS) * windowMs
          const untilGroup = maxT - (ENDPOINT_MAX_SKEW_WINDOWS + TEAM_FINALIZE_LAG_WINDOWS) * windowMs
          for (const g of groups.values()) if (g.nextT === null ? g.hasPending() : g.nextT <= untilGroup) g.finalize(untilGroup, out)
          for (const tm of teams.values()) if (tm.nextT === null ? tm.hasPending() : tm.nextT <= until) tm.finalize(until, out)
        }
      }
      return out
    },

    onDeployment(m) {
      teamState(m.team).addMarker({ id: m.deployment_id, t: toMs(m.timestamp), endpoint: m.endpoint })
    },

    size() {
      return { series: series.size, endpoints: groups.size, teams: teams.size }
    },

    flush() {
      const out: AlertRecord[] = []
      if (Number.isFinite(maxT)) {
        for (const g of groups.values()) g.finalize(maxT, out)
        for (const t of teams.values()) t.finalize(maxT, out)
      }
      return out
    },
  }
}
