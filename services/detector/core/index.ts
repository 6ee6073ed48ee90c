/**
 * Pure detection core (no I/O, no clock): fed closed windows and deployment markers in event
 * time, returns alert state changes. The live detector service and the backtest both use it.
 */
import type { AlertRecord } from '../../../schemas/alert.ts'
import type { DeploymentMarker } from '../../../schemas/deployment.ts'
import type { WindowRecord } from '../../../schemas/window.ts'
import { thresholdFor, type DetectorConfig } from './config.ts'
import { KeyTracker } from './key.ts'
import { MAX_GAP_FILL_WINDOWS, TEAM_FINALIZE_LAG_WINDOWS } from './params.ts'
import { TeamState } from './team.ts'
import { toMs } from './time.ts'

export { defaultDetectorConfig, type DetectorConfig, type DetectorTeamConfig } from './config.ts'

export interface DetectorCore {
  /** Feed one closed window; returns the alert state changes it produced. Redelivered or older windows of a series are ignored. */
  onWindow(w: WindowRecord): AlertRecord[]
  onDeployment(m: DeploymentMarker): void
  /** End of input (backtest): finalize pending team rollups; returns any alerts. */
  flush(): AlertRecord[]
}

export function createDetectorCore(config: DetectorConfig): DetectorCore {
  const windowMs = config.windowMs
  const teamConfigs = new Map(config.teams.map((t) => [t.name, t]))
  const series = new Map<string, KeyTracker>()
  const teams = new Map<string, TeamState>()
  let watermark = -Infinity

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

  function finalizeTeams(until: number, out: AlertRecord[]): void {
    for (const t of teams.values()) t.finalize(until, out)
  }

  return {
    onWindow(w) {
      const t = toMs(w.window_start)
      const id = `${w.team}\u0000${w.endpoint}\u0000${w.model}`
      let s = series.get(id)
      if (!s) {
        s = new KeyTracker(w.team, w.endpoint, w.model)
        series.set(id, s)
      }
      if (t <= s.lastT) return []
      const out: AlertRecord[] = []
      const team = teamState(w.team)
      const wasOpen = s.cprAlert !== null
      if (Number.isFinite(s.lastT)) {
        const missing = Math.round((t - s.lastT) / windowMs) - 1
        if (missing > MAX_GAP_FILL_WINDOWS) s.restartEvidence()
        else for (let m = 1; m <= missing; m++) s.process({ t: s.lastT + windowMs, n: 0, c: 0, q: 0, i: 0, o: 0, k: 0, e: 0, deps: null }, team.seriesCtx, out)
      }
      const { requests: n, cost_usd: c, cost_sq_sum: q } = w
      s.process({ t, n, c, q, i: w.input_tokens, o: w.output_tokens, k: w.cache_read_tokens, e: w.errors, deps: w.deployments }, team.seriesCtx, out)
      const isOpen = s.cprAlert !== null
      if (isOpen !== wasOpen) team.openSeriesCpr += isOpen ? 1 : -1
      const x = s.expectation(n, c, q)
      team.add(t, w, x.xc, x.xv)
      if (t > watermark) {
        watermark = t
        finalizeTeams(watermark - TEAM_FINALIZE_LAG_WINDOWS * windowMs, out)
      }
      return out
    },

    onDeployment(m) {
      teamState(m.team).addMarker({ id: m.deployment_id, t: toMs(m.timestamp), endpoint: m.endpoint })
    },

    flush() {
      const out: AlertRecord[] = []
      if (Number.isFinite(watermark)) finalizeTeams(watermark, out)
      return out
    },
  }
}
