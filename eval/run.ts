/**
 * `npm run eval`: detection quality of the detector core on labelled scenarios generated from
 * the real token distributions of the Azure LLM inference trace 2023 (Microsoft, CC-BY-4.0).
 * Prints the table per kind, then the summary JSON as the last line.
 *
 * EVAL_HOLDOUT=1 runs the held-out family of shapes (another seed unless EVAL_SEED is set);
 * EVAL_INTERLEAVE=1 also checks that a multi-partition delivery order gives the same alerts.
 * EVAL_COLD=<n>: keep only n endpoint cells in memory, the others as bytes in a cell store (as the
 * service does with its scratch file): the alerts must be the same as with every cell in memory.
 */
import { performance } from 'node:perf_hooks'
import type { AlertRecord } from '../schemas/alert.ts'
import type { WindowRecord } from '../schemas/window.ts'
import { createDetectorCore, createMemoryCellStore, defaultDetectorConfig } from '../services/detector/core/index.ts'
import { loadTokens } from './dataset.ts'
import { newCursor, windowsAt, type SeriesCursor } from './generate.ts'
import { Rng } from './rng.ts'
import { buildScenarios, DAYS, START } from './scenarios.ts'
import { formatTable, score } from './score.ts'

const M = 60_000
const holdout = Boolean(process.env.EVAL_HOLDOUT)
const seed = Number(process.env.EVAL_SEED ?? (holdout ? 77003 : 20260105))
const started = performance.now()
const code = loadTokens('code')
const conv = loadTokens('conv')
const specs = buildScenarios(seed, code, conv, holdout)
const teams = [...new Set(specs.map((s) => s.team))]
// generous budgets: the eval measures trend breaks; budget burn is covered by the unit tests
const detector = createDetectorCore({
  ...defaultDetectorConfig,
  teams: teams.map((name) => ({ name, monthlyBudgetUsd: 1e6 })),
  ...(process.env.EVAL_COLD ? { cellStore: createMemoryCellStore(), hotEndpoints: Number(process.env.EVAL_COLD) } : {}),
})
const rng = new Rng(seed ^ 0x5eed)
const cursors: SeriesCursor[] = specs.map((s, i) => newCursor(s, seed ^ (0x51ed + i)))
const markers = specs
  .flatMap((s) => s.services.flatMap((v) => v.deploys.filter((d) => d.marker).map((d) => ({ team: s.team, endpoint: s.endpoint, service: v.name, id: d.id, t: d.t }))))
  .sort((a, b) => a.t - b.t)
let markerIdx = 0
// EVAL_INTERLEAVE=1: also feed the same windows as a multi-partition consumer would (series on 8
// partitions, each drained in random chunks) and check the alerts are the same multiset
const interleave = Boolean(process.env.EVAL_INTERLEAVE)
// EVAL_DUMP=<endpoint>: print that endpoint's windows (diagnosis)
const dump = process.env.EVAL_DUMP
const perSeries: WindowRecord[][] = specs.map(() => [])
const alerts: AlertRecord[] = []
let detectorMs = 0
let windows = 0
const end = START + DAYS * 24 * 60 * M
for (let t = START; t < end; t += M) {
  while (markerIdx < markers.length && (markers[markerIdx]?.t ?? Infinity) <= t) {
    const m = markers[markerIdx++]
    if (m) detector.onDeployment({ deployment_id: m.id, team: m.team, service: m.service, endpoint: m.endpoint, timestamp: new Date(m.t).toISOString() })
  }
  for (let k = 0; k < cursors.length; k++) {
    for (const w of windowsAt(cursors[k] as SeriesCursor, t, rng)) {
      if (dump === w.endpoint) console.log(JSON.stringify(w))
      if (interleave) (perSeries[k] as WindowRecord[]).push(w)
      const a = performance.now()
      const out = detector.onWindow(w)
      detectorMs += performance.now() - a
      windows++
      for (const x of out) alerts.push(x)
    }
  }
}
const a = performance.now()
alerts.push(...detector.flush())
detectorMs += performance.now() - a

let interleaved: { same: boolean; only_ordered: number; only_interleaved: number; max_skew_windows: number } | undefined
if (interleave) {
  const r = interleavedRun()
  const key = (a: AlertRecord) => JSON.stringify(a)
  const count = (xs: AlertRecord[]) => xs.reduce((m, a) => m.set(key(a), (m.get(key(a)) ?? 0) + 1), new Map<string, number>())
  const a0 = count(alerts)
  const a1 = count(r.alerts)
  let onlyA = 0
  let onlyB = 0
  for (const [k, n] of a0) onlyA += Math.max(0, n - (a1.get(k) ?? 0))
  for (const [k, n] of a1) onlyB += Math.max(0, n - (a0.get(k) ?? 0))
  interleaved = { same: onlyA === 0 && onlyB === 0, only_ordered: onlyA, only_interleaved: onlyB, max_skew_windows: r.maxSkew }
}

/** Series on 8 partitions; a random partition delivers a chunk of up to 300 windows, staying within 200 windows of event time ahead of the slowest. */
function interleavedRun(): { alerts: AlertRecord[]; maxSkew: number } {
  const r = new Rng(seed ^ 0x1a7e)
  const P = 8
  const parts: WindowRecord[][] = Array.from({ length: P }, () => [])
  perSeries.forEach((ws) => (parts[r.int(P)] as WindowRecord[]).push(...ws))
  const ts = parts.map((p) => p.map((w) => Date.parse(w.window_start)))
  const order = parts.map((p, k) => p.map((_, i) => i).sort((x, y) => (ts[k]![x] as number) - (ts[k]![y] as number)))
  const pos = parts.map(() => 0)
  const head = (k: number): number => (pos[k]! < order[k]!.length ? ts[k]![order[k]![pos[k]!]!]! : Infinity)
  const d = createDetectorCore({ ...defaultDetectorConfig, teams: teams.map((name) => ({ name, monthlyBudgetUsd: 1e6 })) })
  for (const m of markers) d.onDeployment({ deployment_id: m.id, team: m.team, service: m.service, endpoint: m.endpoint, timestamp: new Date(m.t).toISOString() })
  const out: AlertRecord[] = []
  let maxSkew = 0
  let newest = -Infinity
  for (;;) {
    const open = parts.map((_, k) => k).filter((k) => head(k) < Infinity)
    if (open.length === 0) break
    const slowest = Math.min(...open.map(head))
    const k = r.pick(open.filter((j) => head(j) < slowest + 200 * M))
    const size = 1 + r.int(300)
    for (let i = 0; i < size && head(k) < slowest + 200 * M; i++) {
      const w = parts[k]![order[k]![pos[k]!++]!]!
      newest = Math.max(newest, Date.parse(w.window_start))
      maxSkew = Math.max(maxSkew, (newest - slowest) / M)
      out.push(...d.onWindow(w))
    }
  }
  out.push(...d.flush())
  return { alerts: out, maxSkew }
}

const scored = score(cursors, alerts)
// duplicate resend storms: copies the aggregator's deduplication dropped, and copies that got through
const storms = cursors.filter((c) => c.spec.kind === 'duplicate_storm')
const result = {
  ...scored.summary,
  ...(storms.length ? { duplicate_storm_copies: { dropped: storms.reduce((s, c) => s + (c.dropped ?? 0), 0), passed: storms.reduce((s, c) => s + (c.passed ?? 0), 0) } } : {}),
  ...(interleaved ? { interleaved } : {}),
  alerts: alerts.length,
  windows,
  detector_us_per_window: Math.round((detectorMs * 1000) / windows * 100) / 100,
  run_seconds: Math.round((performance.now() - started) / 100) / 10,
}
if (process.env.EVAL_VERBOSE) for (const x of alerts) console.log(JSON.stringify(x))
console.log(`scenarios${holdout ? ' (held out)' : ''}: ${specs.length} endpoints over ${DAYS} days from Monday ${new Date(START).toISOString().slice(0, 10)}, ${teams.length} teams, ${windows} windows, ${alerts.length} alert state changes, seed ${seed}`)
console.log(formatTable(scored.rows))
console.log(JSON.stringify(result))
