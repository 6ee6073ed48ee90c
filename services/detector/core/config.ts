/** Detector configuration: the public shape, its defaults and per-team threshold resolution. */
import type { CellStore } from './cells.ts'

export interface DetectorTeamConfig {
  name: string
  thresholdPct?: number
  signals?: { cost_per_request?: { thresholdPct?: number }; burn_rate?: { thresholdPct?: number } }
  monthlyBudgetUsd?: number
}

export interface DetectorConfig {
  /** trend-break threshold in percent (default 20) */
  thresholdPct: number
  /** optional volume floor: a key averaging fewer requests per window cannot page (default 0: the evidence since the change point decides) */
  minRequestsPerWindow: number
  /** window length in ms (default 60000) */
  windowMs: number
  /** an alert resolves once the signal is back within half the threshold over this many windows */
  resolveWindows: number
  teams: DetectorTeamConfig[]
  /** where cold endpoint cells live (cells.ts); none: every cell stays in memory */
  cellStore?: CellStore
  /** endpoint cells kept in memory when a cell store is given (default DEFAULT_HOT_ENDPOINTS) */
  hotEndpoints?: number
}

export const defaultDetectorConfig: DetectorConfig = {
  thresholdPct: 20,
  minRequestsPerWindow: 0,
  windowMs: 60_000,
  resolveWindows: 10,
  teams: [],
}

export type TrendSignal = 'cost_per_request' | 'burn_rate'

/** Threshold as a fraction (0.2 for 20%) for one team and signal. */
export function thresholdFor(config: DetectorConfig, team: DetectorTeamConfig | undefined, signal: TrendSignal): number {
  const pct = team?.signals?.[signal]?.thresholdPct ?? team?.thresholdPct ?? config.thresholdPct
  return pct / 100
}
