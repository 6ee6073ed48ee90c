/**
 * Scoring of alerts against the labelled scenarios, per kind. A break is an event whose realized
 * change of cost per request is at least BREAK_MIN (20%) in the intended direction; it is found
 * by a `firing` alert of that endpoint (any of its models, or the endpoint across models) in the
 * same direction detected in (t0, t1 + 30 min]. A page is a `firing` alert with direction `up`;
 * `down` alerts are notices. A false page is a page outside the span of a labelled event
 * [t0 − 5 min, t1 + 60 min] of its endpoint (for team rollups: of any member endpoint), and any
 * page on a kind that must not page (spikes, surges, outages, new endpoints, duplicate resend
 * storms, ...).
 *
 * A retry storm (failed calls billing their input, each retried) is labelled by its realized change
 * of cost per successful call, the cost of the work done: the cost per call may even fall (failed
 * calls produce no output) while the spend for the same work rises. It is found by an upward alert
 * of either signal, and its driver is right when it names the error share (errors/retries).
 */
import type { AlertRecord } from '../schemas/alert.ts'
import { realizedChange, realizedChangePerSuccess, type SeriesCursor } from './generate.ts'
import { BREAK_KINDS, DAYS, type Kind, type SeriesSpec } from './scenarios.ts'

const M = 60_000
const BREAK_MIN = 0.2

const quantile = (xs: number[], q: number): number | null => {
  if (xs.length === 0) return null
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))] ?? null
}
const ratio = (a: number, b: number): number | null => (b > 0 ? Math.round((a / b) * 1000) / 1000 : null)
const r1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10)

function expectedDriver(s: SeriesSpec): AlertRecord['drivers']['primary'] {
  switch (s.kind) {
    case 'model_swap':
      return 'model_mix'
    case 'price_change':
      return 'price'
    case 'cache_regression':
      return 'cache_reads'
    case 'retry_storm':
      return 'error_share'
    default:
      return s.via === 'input' ? 'input_tokens_per_request' : 'output_tokens_per_request'
  }
}

interface Found {
  s: SeriesSpec
  a: AlertRecord
  delay: number
  floor: number | null
}

export interface KindRow {
  kind: Kind | 'team rollups' | 'all breaks >= 20%'
  endpoints: number
  breaks: number
  recall: number | null
  paged_share: number | null
  false_pages_per_1000_series_days: number | null
  notices_per_1000_series_days: number | null
  delay_min_median: number | null
  delay_min_p90: number | null
  delay_min_p90_ge10rpm: number | null
  delay_x_floor_median: number | null
  change_point_within_5min: number | null
  deployment_first: number | null
  driver_right: number | null
}

export function score(cursors: SeriesCursor[], alerts: AlertRecord[]): { rows: KindRow[]; summary: Record<string, unknown> } {
  const firing = alerts.filter((a) => a.status === 'firing')
  const byEndpoint = new Map<string, AlertRecord[]>()
  const byTeam = new Map<string, AlertRecord[]>()
  for (const a of firing) {
    if (a.endpoint === null) byTeam.set(a.team, [...(byTeam.get(a.team) ?? []), a])
    else byEndpoint.set(`${a.team}|${a.endpoint}`, [...(byEndpoint.get(`${a.team}|${a.endpoint}`) ?? []), a])
  }
  const of = (s: SeriesSpec): AlertRecord[] => byEndpoint.get(`${s.team}|${s.endpoint}`) ?? []
  const isBreakKind = (k: Kind): boolean => BREAK_KINDS.includes(k) || k === 'small_step'
  const inSpan = (s: SeriesSpec, t: number): boolean => isBreakKind(s.kind) && t > s.t0 - 5 * M && t <= s.t1 + 60 * M

  const rows: KindRow[] = []
  const falseBySignal: Record<string, number> = {}
  const allFound: Found[] = []
  let allBreaks = 0
  let allFalse = 0
  const kinds = [...new Set(cursors.map((c) => c.spec.kind))]
  for (const kind of kinds) {
    const cs = cursors.filter((c) => c.spec.kind === kind)
    const found: Found[] = []
    let breaks = 0
    let paged = 0
    let falsePages = 0
    let notices = 0
    for (const c of cs) {
      const s = c.spec
      const rel = kind === 'retry_storm' ? realizedChangePerSuccess(c.label) : realizedChange(c.label)
      const dir = s.change < 0 ? -1 : 1
      const isBreak = BREAK_KINDS.includes(kind) && dir * rel >= BREAK_MIN
      const as = of(s)
      if (as.some((a) => a.direction === 'up' && inSpan(s, Date.parse(a.detected_at)))) paged++
      for (const a of as) {
        const t = Date.parse(a.detected_at)
        if (a.direction === 'down') notices++
        else if (!inSpan(s, t)) {
          if (process.env.EVAL_FALSE) console.log(`false page ${s.kind} ${s.team}/${s.endpoint} ${a.model} ${a.signal} ${a.change_pct}% started ${a.started_at} detected ${a.detected_at}; event ${new Date(s.t0).toISOString()}..${new Date(s.t1).toISOString()} deps ${a.deployment_ids.join(',')}`)
          falsePages++
          falseBySignal[a.signal] = (falseBySignal[a.signal] ?? 0) + 1
        }
      }
      if (!isBreak) continue
      breaks++
      const a = as.find((x) => {
        const t = Date.parse(x.detected_at)
        return t > s.t0 && t <= s.t1 + 30 * M && (x.direction === 'up') === dir > 0
      })
      if (!a && process.env.EVAL_FALSE) console.log(`missed ${s.kind} ${s.team}/${s.endpoint} ${(rel * 100).toFixed(1)}% at ${new Date(s.t0).toISOString()}; alerts ${as.map((x) => `${x.model ?? '*'} ${x.signal} ${x.direction} ${x.detected_at}`).join('; ')}`)
      if (a && process.env.EVAL_WRONG) {
        const cpOff = (Date.parse(a.started_at) - s.t0) / M
        const depOk = s.causeId === null ? a.deployment_ids.length === 0 : a.deployment_ids[0] === s.causeId
        if (Math.abs(cpOff) > 5 || !depOk || a.drivers.primary !== expectedDriver(s))
          console.log(`wrong ${s.kind} ${s.team}/${s.endpoint} ${a.model ?? '*'} ${a.signal} ${a.change_pct}%: cp ${cpOff >= 0 ? '+' : ''}${cpOff} min, deployments ${a.deployment_ids.join(',') || '-'} (cause ${s.causeId ?? '-'}), driver ${a.drivers.primary} (want ${expectedDriver(s)}), delay ${(Date.parse(a.detected_at) - s.t0) / M} min`)
      }
      if (a) found.push({ s, a, delay: (Date.parse(a.detected_at) - s.t0) / M, floor: c.label.floorAt === null ? null : (c.label.floorAt - s.t0) / M })
    }
    allBreaks += breaks
    allFalse += falsePages
    allFound.push(...found)
    rows.push(row(kind, cs.length, breaks, found, paged, falsePages, notices, cs.length * DAYS))
  }
  // team rollups
  const teams = new Map<string, SeriesSpec[]>()
  for (const c of cursors) teams.set(c.spec.team, [...(teams.get(c.spec.team) ?? []), c.spec])
  let teamFalse = 0
  let teamNotices = 0
  for (const [team, members] of teams) {
    for (const a of byTeam.get(team) ?? []) {
      if (a.signal === 'budget_burn') continue
      const t = Date.parse(a.detected_at)
      if (a.direction === 'down') teamNotices++
      else if (!members.some((s) => inSpan(s, t))) {
        if (process.env.EVAL_FALSE) console.log(`false page team ${team} ${a.signal} ${a.change_pct}% started ${a.started_at} detected ${a.detected_at}; members ${members.map((s) => `${s.kind}@${new Date(s.t0).toISOString()}..${new Date(s.t1).toISOString()}`).join(' ')} deps ${a.deployment_ids.join(',')}`)
        teamFalse++
        falseBySignal[`team ${a.signal}`] = (falseBySignal[`team ${a.signal}`] ?? 0) + 1
      }
    }
  }
  rows.push(row('team rollups', teams.size, 0, [], 0, teamFalse, teamNotices, teams.size * DAYS))
  const overall = row('all breaks >= 20%', cursors.length, allBreaks, allFound, 0, allFalse + teamFalse, 0, (cursors.length + teams.size) * DAYS)
  rows.push(overall)
  const spikes = cursors.filter((c) => c.spec.kind === 'spike')
  const small = cursors.filter((c) => c.spec.kind === 'small_step')
  const summary = {
    recall: overall.recall,
    breaks: allBreaks,
    delay_min_median: overall.delay_min_median,
    delay_min_p90_ge10rpm: overall.delay_min_p90_ge10rpm,
    delay_x_floor_median: overall.delay_x_floor_median,
    false_pages_per_1000_series_days: overall.false_pages_per_1000_series_days,
    change_point_within_5min: overall.change_point_within_5min,
    deployment_first: overall.deployment_first,
    driver_right: overall.driver_right,
    spike_paging_rate: ratio(spikes.filter((c) => of(c.spec).some((a) => a.direction === 'up' && Date.parse(a.detected_at) > c.spec.t0 && Date.parse(a.detected_at) <= c.spec.t0 + 60 * M)).length, spikes.length),
    small_step_10_15_paging_rate: rows.find((r) => r.kind === 'small_step')?.paged_share ?? null,
    small_steps: small.length,
    series_days: (cursors.length + teams.size) * DAYS,
    false_pages_by_signal: falseBySignal,
  }
  return { rows, summary }
}

function row(kind: KindRow['kind'], endpoints: number, breaks: number, found: Found[], paged: number, falsePages: number, notices: number, seriesDays: number): KindRow {
  const delays = found.map((f) => f.delay)
  const busy = found.filter((f) => f.s.rate >= 10).map((f) => f.delay)
  const xFloor = found.filter((f) => f.floor !== null && f.floor > 0).map((f) => f.delay / (f.floor as number))
  const depRight = found.filter(({ s, a }) => (s.causeId === null ? a.deployment_ids.length === 0 : a.deployment_ids[0] === s.causeId)).length
  return {
    kind,
    endpoints,
    breaks,
    recall: ratio(found.length, breaks),
    paged_share: ratio(paged, endpoints),
    false_pages_per_1000_series_days: ratio(falsePages * 1000, seriesDays),
    notices_per_1000_series_days: ratio(notices * 1000, seriesDays),
    delay_min_median: quantile(delays, 0.5),
    delay_min_p90: quantile(delays, 0.9),
    delay_min_p90_ge10rpm: quantile(busy, 0.9),
    delay_x_floor_median: r1(quantile(xFloor, 0.5)),
    change_point_within_5min: ratio(found.filter(({ s, a }) => Math.abs(Date.parse(a.started_at) - s.t0) <= 5 * M).length, found.length),
    deployment_first: ratio(depRight, found.length),
    driver_right: ratio(found.filter(({ s, a }) => a.drivers.primary === expectedDriver(s)).length, found.length),
  }
}

/** The rows as a fixed-width table. */
export function formatTable(rows: KindRow[]): string {
  const cols: [keyof KindRow, string][] = [
    ['kind', 'kind'],
    ['endpoints', 'n'],
    ['breaks', 'breaks'],
    ['recall', 'recall'],
    ['paged_share', 'paged'],
    ['false_pages_per_1000_series_days', 'FP/1k sd'],
    ['notices_per_1000_series_days', 'notices/1k sd'],
    ['delay_min_median', 'delay med'],
    ['delay_min_p90', 'p90'],
    ['delay_min_p90_ge10rpm', 'p90 >=10rpm'],
    ['delay_x_floor_median', 'x floor'],
    ['change_point_within_5min', 'cp<=5m'],
    ['deployment_first', 'deploy 1st'],
    ['driver_right', 'driver'],
  ]
  const cell = (v: unknown): string => (v === null || v === undefined ? '–' : String(v))
  const widths = cols.map(([k, h]) => Math.max(h.length, ...rows.map((r) => cell(r[k]).length)))
  const line = (xs: string[]): string => '| ' + xs.map((x, i) => x.padEnd(widths[i] as number)).join(' | ') + ' |'
  return [line(cols.map(([, h]) => h)), line(widths.map((w) => '-'.repeat(w))), ...rows.map((r) => line(cols.map(([k]) => cell(r[k]))))].join('\n')
}
