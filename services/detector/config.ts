/** Maps the app config (DESIGN.md "Config file") onto the detector core's config. */
import type { ConfigFile } from '../../shared/config.ts'
import type { DetectorConfig } from './core/index.ts'

export function detectorConfig(file: ConfigFile): DetectorConfig {
  return {
    thresholdPct: file.defaults.threshold_pct,
    minRequestsPerWindow: file.defaults.min_requests_per_window,
    windowMs: file.defaults.window,
    resolveWindows: file.defaults.resolve_windows,
    hotEndpoints: file.defaults.hot_endpoints,
    teams: file.teams.map((t) => ({
      name: t.name,
      ...(t.threshold_pct !== undefined ? { thresholdPct: t.threshold_pct } : {}),
      ...(t.monthly_budget_usd !== undefined ? { monthlyBudgetUsd: t.monthly_budget_usd } : {}),
      signals: {
        ...(t.signals?.cost_per_request?.threshold_pct !== undefined ? { cost_per_request: { thresholdPct: t.signals.cost_per_request.threshold_pct } } : {}),
        ...(t.signals?.burn_rate?.threshold_pct !== undefined ? { burn_rate: { thresholdPct: t.signals.burn_rate.threshold_pct } } : {}),
      },
    })),
  }
}
