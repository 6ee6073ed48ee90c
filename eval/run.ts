/**
 * `npm run eval`: detection quality of the detector core on labelled scenarios generated from
 * the real token distributions of the Azure LLM inference trace. Prints details, then the
 * summary JSON as the last line.
 */
import { performance } from 'node:perf_hooks'
import type { AlertRecord } from '../schemas/alert.ts'
import { createDetectorCore, defaultDetectorConfig } from '../services/detector/core/index.ts'
import { loadTokens } from './dataset.ts'
import { windowAt, type SeriesCursor } from './generate.ts'
import { Rng } from './rng.ts'
import { buildScenarios, DAYS, START } from './scenarios.ts'
import { score } from './score.ts'

const M = 60_000
const seed = Number(process.env.EVAL_SEED ?? 20260105)
const started = performance.now()
const code = loadTokens('code')
const conv = loadTokens('conv')
const specs = buildScenarios(seed, code, conv)
const teams = [...new Set(specs.map((s) => s.team))]
// generous budgets: the eval measures trend breaks; budget burn is covered by the unit tests
const detector = createDetectorCore({
  ...defaultDetectorConfig,
  teams: teams.map((name) => ({ name, monthlyBudgetUsd: 1e6 })),
})
const rng = new Rng(seed ^ 0x5eed)
const cursors: SeriesCursor[] = specs.map((spec) => ({ spec, deployIdx: 0 }))
const markers = specs
  .flatMap((s) => s.deploys.filter((d) => d.marker).map((d) => ({ team: s.team, endpoint: s.endpoint, id: d.id, t: d.t })))
  .sort((a, b) => a.t - b.t)
let markerIdx = 0
const alerts: AlertRecord[] = []
let detectorMs = 0
let windows = 0
const end = START + DAYS * 24 * 60 * M
for (let t = START; t < end; t += M) {
  while (markerIdx < markers.length && (markers[markerIdx]?.t ?? Infinity) <= t) {
    const m = markers[markerIdx++]
    if (m) detector.onDeployment({ deployment_id: m.id, team: m.team, service: m.endpoint, endpoint: m.endpoint, timestamp: new Date(m.t).toISOString() })
  }
  for (const c of cursors) {
    const w = windowAt(c, t, rng)
    if (!w) continue
    const a = performance.now()
    const out = detector.onWindow(w)
    detectorMs += performance.now() - a
    windows++
    for (const x of out) alerts.push(x)
  }
}
const a = performance.now()
alerts.push(...detector.flush())
detectorMs += performance.now() - a

const result = {
  ...score(specs, alerts),
  alerts: alerts.length,
  windows,
  detector_us_per_window: Math.round((detectorMs * 1000) / windows * 100) / 100,
  run_seconds: Math.round((performance.now() - started) / 100) / 10,
}
if (process.env.EVAL_VERBOSE) for (const x of alerts) console.log(JSON.stringify(x))
console.log(`scenarios: ${specs.length} series over ${DAYS} days, ${teams.length} teams, ${windows} windows, ${alerts.length} alert state changes`)
console.log(JSON.stringify(result))
