/** Scoring of alerts against the labelled scenarios. */
import type { AlertRecord } from '../schemas/alert.ts'
import { DAYS, type Kind, type SeriesSpec } from './scenarios.ts'

const M = 60_000
const UNCHANGED: Kind[] = ['control', 'null_deploy', 'surge', 'spike']

const quantile = (xs: number[], q: number): number | null => {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))] ?? null
}
const ratio = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 1000) / 1000 : null)

export function score(specs: SeriesSpec[], alerts: AlertRecord[]) {
  const firing = alerts.filter((a) => a.status === 'firing')
  const bySeries = new Map<string, AlertRecord[]>()
  const byTeam = new Map<string, AlertRecord[]>()
  for (const a of firing) {
    const k = a.endpoint === null ? a.team : `${a.team}|${a.endpoint}`
    const m = a.endpoint === null ? byTeam : bySeries
    m.set(k, [...(m.get(k) ?? []), a])
  }
  const seriesAlerts = (s: SeriesSpec): AlertRecord[] => bySeries.get(`${s.team}|${s.endpoint}`) ?? []
  const cpr = (xs: AlertRecord[]): AlertRecord[] => xs.filter((a) => a.signal === 'cost_per_request')

  const hits = (s: SeriesSpec): AlertRecord | undefined =>
    cpr(seriesAlerts(s)).find((a) => {
      const t = Date.parse(a.detected_at)
      return t > s.t0 && t <= s.t1 + 30 * M && (a.direction === 'up') === s.change > 0
    })

  const steps = specs.filter((s) => s.kind === 'step')
  const stepHits = steps.map((s) => ({ s, a: hits(s) }))
  const found = stepHits.filter((x) => x.a !== undefined) as { s: SeriesSpec; a: AlertRecord }[]
  const delays = found.map(({ s, a }) => (Date.parse(a.detected_at) - s.t0) / M)
  const cpWithin5 = found.filter(({ s, a }) => Math.abs(Date.parse(a.started_at) - s.t0) <= 5 * M).length
  const spikes = specs.filter((s) => s.kind === 'spike')
  const attributed = found.filter(({ s, a }) => a.deployment_ids[0] === s.causeId).length
  const drifts = specs.filter((s) => s.kind === 'drift')
  const quiet = specs.filter((s) => s.kind === 'quiet_step')

  // false pages: on unchanged series any page (burn-rate pages on surges are by design and
  // reported apart); on series with a labelled event, any page outside the event's span
  let falsePages = 0
  let surgeBurnPages = 0
  let outsideEventPages = 0
  const unchanged = specs.filter((s) => UNCHANGED.includes(s.kind) && s.kind !== 'spike')
  for (const s of unchanged) {
    for (const a of seriesAlerts(s)) {
      if (s.kind === 'surge' && a.signal === 'burn_rate') surgeBurnPages++
      else falsePages++
    }
  }
  for (const s of specs) {
    if (UNCHANGED.includes(s.kind)) continue
    for (const a of seriesAlerts(s)) {
      const t = Date.parse(a.detected_at)
      if (t <= s.t0 - 5 * M || t > s.t1 + 60 * M) outsideEventPages++
    }
  }
  const teamKinds = new Map<string, Set<Kind>>()
  for (const s of specs) teamKinds.set(s.team, (teamKinds.get(s.team) ?? new Set()).add(s.kind))
  let teamFalse = 0
  let unchangedTeams = 0
  for (const [team, kinds] of teamKinds) {
    if (![...kinds].every((k) => UNCHANGED.includes(k))) continue
    unchangedTeams++
    for (const a of byTeam.get(team) ?? []) if (!(kinds.has('surge') && a.signal === 'burn_rate')) teamFalse++
  }
  const seriesDays = (unchanged.length + unchangedTeams) * DAYS
  const small = specs.filter((s) => s.kind === 'small_step')
  const vol = specs.filter((s) => s.kind === 'volume_shift')
  const allSeriesDays = specs.length * DAYS
  return {
    recall: ratio(found.length, steps.length),
    breaks: steps.length,
    false_pages_per_1000_series_days: ratio((falsePages + teamFalse) * 1000, seriesDays),
    false_pages: falsePages + teamFalse,
    pages_outside_labelled_events_per_1000_series_days: ratio(outsideEventPages * 1000, (specs.length - unchanged.length - spikes.length) * DAYS),
    unchanged_series_days: seriesDays,
    delay_windows_median: quantile(delays, 0.5),
    delay_windows_p90: quantile(delays, 0.9),
    change_point_within_5min: ratio(cpWithin5, found.length),
    attribution_top1: ratio(attributed, found.length),
    spike_paging_rate: ratio(spikes.filter((s) => seriesAlerts(s).length > 0).length, spikes.length),
    small_step_10_15_paging_rate: ratio(small.filter((s) => cpr(seriesAlerts(s)).length > 0).length, small.length),
    drift_recall: ratio(drifts.filter((s) => hits(s)).length, drifts.length),
    quiet_step_recall: ratio(quiet.filter((s) => hits(s)).length, quiet.length),
    surge_burn_rate_pages: surgeBurnPages,
    sustained_volume_shift_burn_pages: ratio(vol.filter((s) => seriesAlerts(s).some((a) => a.signal === 'burn_rate')).length, vol.length),
    series_days: allSeriesDays,
  }
}
