/** The weekly digest as Slack mrkdwn text (pure). */
import type { Digest, Ranked } from './build.ts'

const money = (v: string | number) => `$${Number(v).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 })}`
const change = (p: number | null) => (p === null ? 'new' : `${p > 0 ? '+' : ''}${p.toFixed(1)}%`)
/** Slack mrkdwn control characters in names from outside */
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

function ranked(title: string, items: Ranked[]): string[] {
  if (!items.length) return []
  return [`*${title}*`, ...items.map((i, n) => `${n + 1}. ${esc(i.name)}: ${money(i.cost)} (${change(i.changePct)} week over week, ${i.requests.toLocaleString('en-US')} requests)`)]
}

export function renderDigest(d: Digest): string {
  const lines = [
    `*Weekly AI spend digest — ${esc(d.team)}, ${d.week.id}* (${d.week.timezone})`,
    `Spend ${money(d.total)} (${change(d.changePct)} vs ${money(d.previousTotal)} the week before), ${d.requests.toLocaleString('en-US')} requests.`,
    '',
    ...ranked('By environment', d.environments),
    ...ranked('Top models', d.models),
    ...ranked('Top endpoints', d.endpoints),
    '',
    `*Budget and month-end forecast (${d.month}, UTC)*`,
  ]
  for (const f of d.forecasts) {
    const budget = f.budget === null ? 'no budget set' : `budget ${money(f.budget)}, ${f.variance! > 0 ? `${money(f.variance!)} over` : `${money(-f.variance!)} under`} its pro-rata share so far`
    lines.push(`• ${esc(f.environment)}: ${money(f.monthToDate)} month to date; forecast ${money(f.forecast)} (range ${money(f.forecastLow)}–${money(f.forecastHigh)}); ${budget}`)
  }
  lines.push('', `*Alerts this week* (${d.alerts.length})`)
  if (!d.alerts.length) lines.push('None.')
  for (const a of d.alerts) {
    const what = [a.endpoint, a.model].filter(Boolean).map((x) => esc(x!)).join(' / ') || 'team total'
    lines.push(`• ${a.signal} ${change(a.change_pct)} on ${what}${a.environment === 'production' ? '' : ` (${esc(a.environment)})`} since ${a.started_at} UTC — ${a.outcome}${a.resolved_at ? ` at ${a.resolved_at} UTC` : ''}`)
  }
  return lines.join('\n') + '\n'
}
