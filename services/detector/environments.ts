/**
 * Environments kept apart in detection: one detection core per environment, so windows of
 * staging or dev never reach a production baseline (series, endpoint and team signals alike), and
 * each environment's team budget is its own (config `environment_budgets_usd`; production's is
 * `monthly_budget_usd`). Pure, like the core. Alerts of another environment than production carry
 * `environment` and end their `alert_id` in `@environment`, so ids stay unique across environments;
 * production's alerts are exactly what one core gives.
 */
import type { AlertRecord } from '../../schemas/alert.ts'
import type { DeploymentMarker } from '../../schemas/deployment.ts'
import { environmentBudget, type ConfigFile } from '../../shared/config.ts'
import { createDetectorCore, type DetectorConfig, type DetectorCore } from './core/index.ts'

export const PRODUCTION = 'production'
/** markers replayed into a core that starts later (an environment's first window) */
const MAX_MARKERS = 5000

/** The detector config of one environment: the same thresholds, that environment's budgets. */
export function environmentConfig(config: DetectorConfig, file: Pick<ConfigFile, 'teams'> | null, environment: string): DetectorConfig {
  if (environment === PRODUCTION || !file) return config
  return {
    ...config,
    teams: config.teams.map((t) => {
      const { monthlyBudgetUsd: _production, ...rest } = t
      const budget = environmentBudget(file, t.name, environment)
      return budget === null ? rest : { ...rest, monthlyBudgetUsd: budget }
    }),
  }
}

/** Field-wise sum of the cores' counts. */
function sumOver<T extends Record<string, number>>(cores: Iterable<DetectorCore>, count: (c: DetectorCore) => T, zero: T): T {
  const n: Record<string, number> = { ...zero }
  for (const c of cores) {
    const s = count(c)
    for (const k in n) n[k] = (n[k] ?? 0) + (s[k] ?? 0)
  }
  return n as T
}

const tag = (a: AlertRecord, environment: string): AlertRecord => ({ ...a, alert_id: `${a.alert_id}@${environment}`, environment })

export function createEnvironmentDetectorCore(config: DetectorConfig, file: Pick<ConfigFile, 'teams'> | null = null): DetectorCore {
  const cores = new Map<string, DetectorCore>()
  const markers: DeploymentMarker[] = []
  const coreFor = (environment: string): DetectorCore => {
    let c = cores.get(environment)
    if (!c) {
      c = createDetectorCore(environmentConfig(config, file, environment))
      for (const m of markers) c.onDeployment(m)
      cores.set(environment, c)
    }
    return c
  }
  const tagged = (environment: string, out: AlertRecord[]) => (environment === PRODUCTION || !out.length ? out : out.map((a) => tag(a, environment)))
  return {
    onWindow(w) {
      const environment = w.environment ?? PRODUCTION
      return tagged(environment, coreFor(environment).onWindow(w))
    },
    onDeployment(m) {
      markers.push(m)
      if (markers.length > MAX_MARKERS) markers.splice(0, markers.length - MAX_MARKERS)
      for (const c of cores.values()) c.onDeployment(m)
    },
    flush() {
      const out: AlertRecord[] = []
      for (const [environment, c] of cores) out.push(...tagged(environment, c.flush()))
      return out
    },
    size: () => sumOver(cores.values(), (c) => c.size(), { series: 0, endpoints: 0, teams: 0 }),
    cellStats: () => sumOver(cores.values(), (c) => c.cellStats(), { hot: 0, cold: 0, reads: 0, writes: 0 }),
  }
}
