/**
 * The dashboard's pages. The overview is a list of sections, each loading its own data and
 * rendering one `<section>`; a section that fails shows its error and the others still render.
 * Adding a view is adding a `Section` to `OVERVIEW_SECTIONS` (or passing more to the server).
 */
import type { ClickHouseClient } from '@clickhouse/client'
import type { AlertRecord } from '../../schemas/alert.ts'
import { teamSettings, type ConfigFile } from '../../shared/config.ts'
import { errorMessage } from '../../shared/errors.ts'
import { printable } from '../../shared/text.ts'
import { seriesTitle } from '../notifier/chart.ts'
import { deploymentUrl, DRIVER_WORDS, formatPct, formatUsd, SIGNAL_WORDS } from '../notifier/render.ts'
import { html, type SafeHtml } from './html.ts'
import { loadAlert, loadBreakdown, loadDeliveries, loadDeploymentMarkers, loadSpendNow, loadTeamMonth, loadTimeline, projectMonthEnd, type Breakdown, type BreakdownRow, type TimelineRow } from './queries.ts'

export interface ViewContext {
  client: ClickHouseClient
  file: ConfigFile
  /** ms since epoch: the dashboard's "now" */
  now: number
}

export interface Section {
  id: string
  title: string
  render(ctx: ViewContext): Promise<SafeHtml>
}

// ---------------------------------------------------------------------------------------------
// small parts

const name = (s: string | null, none: string) => (s === null ? html`<span class="muted">${none}</span>` : printable(s))
const usd = (v: number) => formatUsd(v)
const utc = (iso: string) => iso.slice(0, 16).replace('T', ' ')
export const alertHref = (id: string) => `/alerts/${encodeURIComponent(id)}`

function change(thisWeek: number, lastWeek: number): SafeHtml {
  if (lastWeek <= 0) return thisWeek > 0 ? html`<span class="muted">new</span>` : html`<span class="muted">–</span>`
  const pct = ((thisWeek - lastWeek) / lastWeek) * 100
  return html`<span class="${pct > 0 ? 'up' : pct < 0 ? 'down' : ''}">${formatPct(pct)}</span>`
}

function card(label: string, value: string, note: string | SafeHtml): SafeHtml {
  return html`<div class="card"><div class="label">${label}</div><div class="value">${value}</div><div class="note">${note}</div></div>`
}

function deploymentLink(id: string, file: ConfigFile, markerUrl?: string | null): SafeHtml {
  const url = deploymentUrl(file.deployment_url_template, id) ?? (markerUrl && /^https?:\/\//i.test(markerUrl) ? markerUrl : null)
  return url ? html`<a href="${url}"><code>${printable(id)}</code></a>` : html`<code>${printable(id)}</code>`
}

// ---------------------------------------------------------------------------------------------
// overview sections

const spendNow: Section = {
  id: 'spend-now',
  title: 'Spend now',
  async render(ctx) {
    const s = await loadSpendNow(ctx.client, ctx.now)
    const p = s.projected
    return html`<div class="cards">
${card('Burn rate', `${usd(s.burnUsdPerHour)}/h`, 'spend in the last hour')}
${card('Month to date', usd(s.monthToDateUsd), new Date(ctx.now).toISOString().slice(0, 7))}
${card('Projected month-end', usd(p.usd), html`range ${usd(p.low)} – ${usd(p.high)}<br>${p.basis}`)}
</div>`
  },
}

const budgets: Section = {
  id: 'budgets',
  title: 'Budgets and their burn',
  async render(ctx) {
    const teams = ctx.file.teams.filter((t) => t.monthly_budget_usd !== undefined)
    if (!teams.length) return html`<p class="muted">No budgets configured: set <code>monthly_budget_usd</code> for a team in the config.</p>`
    const month = await loadTeamMonth(ctx.client, ctx.now, teams.map((t) => t.name))
    const d = new Date(ctx.now)
    const start = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1)
    const elapsed = (ctx.now - start) / (Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1) - start)
    const rows = teams.map((t) => {
      const budget = teamSettings(ctx.file, t.name).monthlyBudgetUsd!
      const m = month.get(t.name) ?? { monthToDateUsd: 0, lastDayUsd: 0 }
      const used = m.monthToDateUsd / budget
      const projected = projectMonthEnd(ctx.now, m.monthToDateUsd, m.lastDayUsd, []).usd
      // burn rate as in SRE error budgets: the share of budget spent over the share of the month gone
      const burn = elapsed > 0 ? used / elapsed : 0
      return html`<tr><td>${printable(t.name)}</td><td class="num">${usd(budget)}</td><td class="num">${usd(m.monthToDateUsd)}</td>
<td><meter min="0" max="1" low="0.8" high="0.95" optimum="0" value="${Math.min(1, used).toFixed(3)}" title="${(used * 100).toFixed(1)}% used"></meter> ${(used * 100).toFixed(0)}%</td>
<td class="num ${burn > 1 ? 'up' : ''}">${burn.toFixed(2)}×</td><td class="num ${projected > budget ? 'up' : ''}">${usd(projected)}</td></tr>`
    })
    return html`<table><thead><tr><th>team</th><th class="num">monthly budget</th><th class="num">month to date</th><th>used</th><th class="num">burn rate</th><th class="num">projected month-end</th></tr></thead><tbody>${rows}</tbody></table>
<p class="muted">Burn rate: the share of the budget spent over the share of the month gone (1× spends the budget exactly by month-end).</p>`
  },
}

function timelineRow(a: TimelineRow): SafeHtml {
  return html`<tr>
<td>${utc(a.started_at)}</td><td><span class="badge ${a.status}">${a.status}</span></td><td><span class="badge ${a.severity}">${a.severity}</span></td>
<td><a href="${alertHref(a.alert_id)}">${seriesTitle(a)}</a></td><td>${SIGNAL_WORDS[a.signal] ?? a.signal}</td>
<td class="num ${a.direction === 'up' ? 'up' : 'down'}">${formatPct(Number(a.change_pct))}</td>
<td>${a.deployment_ids[0] ? html`<code>${printable(a.deployment_ids[0])}</code>` : html`<span class="muted">none</span>`}</td>
<td class="num">${usd(Number(a.monthly_impact_usd))}/mo</td></tr>`
}

const alertTimeline: Section = {
  id: 'alerts',
  title: 'Alert timeline',
  async render(ctx) {
    const alerts = await loadTimeline(ctx.client)
    if (!alerts.length) return html`<p class="muted">No trend breaks yet.</p>`
    return html`<table><thead><tr><th>since (change point)</th><th>state</th><th>severity</th><th>series</th><th>signal</th><th class="num">change</th><th>most likely deployment</th><th class="num">impact</th></tr></thead>
<tbody>${alerts.map(timelineRow)}</tbody></table>`
  },
}

function breakdownSection(by: Breakdown, title: string): Section {
  const cols = by === 'endpoint' ? (['team', 'endpoint'] as const) : by === 'environment' ? (['team', 'environment'] as const) : ([by] as const)
  const cells = (r: BreakdownRow) => cols.map((c) => html`<td>${printable(r[c])}</td>`)
  return {
    id: `${by}s`,
    title,
    async render(ctx) {
      const rows = await loadBreakdown(ctx.client, by, ctx.now)
      if (!rows.length) return html`<p class="muted">No spend in the last 14 days.</p>`
      return html`<table><thead><tr>${cols.map((c) => html`<th>${c}</th>`)}<th class="num">last 7 days</th><th class="num">week before</th><th class="num">week over week</th><th class="num">requests (7 d)</th><th class="num">per request</th></tr></thead>
<tbody>${rows.map((r) => html`<tr>${cells(r)}<td class="num">${usd(r.this_week_usd)}</td><td class="num">${usd(r.last_week_usd)}</td><td class="num">${change(r.this_week_usd, r.last_week_usd)}</td><td class="num">${r.requests.toLocaleString('en-US')}</td><td class="num">${r.requests ? usd(r.this_week_usd / r.requests) : '–'}</td></tr>`)}</tbody></table>`
    },
  }
}

export const OVERVIEW_SECTIONS: Section[] = [
  spendNow,
  budgets,
  alertTimeline,
  breakdownSection('team', 'Teams'),
  breakdownSection('environment', 'Environments'),
  breakdownSection('endpoint', 'Endpoints'),
  breakdownSection('model', 'Models'),
]

async function renderSection(s: Section, ctx: ViewContext): Promise<SafeHtml> {
  let body: SafeHtml
  try {
    body = await s.render(ctx)
  } catch (err) {
    body = html`<p class="up">Could not load this part: ${errorMessage(err)}</p>`
  }
  return html`<section id="${s.id}"><h2>${s.title}</h2>${body}</section>`
}

export async function renderOverview(ctx: ViewContext, sections: readonly Section[] = OVERVIEW_SECTIONS): Promise<SafeHtml> {
  const parts = await Promise.all(sections.map((s) => renderSection(s, ctx)))
  return html`<h1>AI spend</h1><p class="muted">As of ${new Date(ctx.now).toISOString().slice(0, 16).replace('T', ' ')} UTC</p>${parts}`
}

// ---------------------------------------------------------------------------------------------
// one alert

function driversTable(a: AlertRecord): SafeHtml {
  const keys = ['input_tokens_per_request', 'output_tokens_per_request', 'cache_reads', 'price', 'error_share'] as const
  const rows = keys
    .map((k) => ({ k, v: a.drivers[k] }))
    .sort((x, y) => Math.abs(y.v) - Math.abs(x.v))
    .map((x) => html`<tr><td>${DRIVER_WORDS[x.k]}${x.k === a.drivers.primary ? html` <span class="badge">primary</span>` : ''}</td><td class="num ${x.v > 0 ? 'up' : x.v < 0 ? 'down' : ''}">${x.v >= 0 ? '+' : '−'}${Math.abs(x.v).toFixed(1)} pp</td></tr>`)
  const volume = a.drivers.primary === 'volume' ? html`<p>Primary driver: <strong>request volume</strong> (more calls, not costlier ones).</p>` : ''
  return html`${volume}<table><thead><tr><th>driver</th><th class="num">share of the change</th></tr></thead><tbody>${rows}</tbody></table>
<p class="muted">Percentage points of the cost-per-request change explained by each component, split exactly from the windows' component costs.</p>`
}

/** The alert's page, or null when there is no such alert. */
export async function renderAlert(ctx: ViewContext, alertId: string): Promise<{ title: string; body: SafeHtml } | null> {
  const changes = await loadAlert(ctx.client, alertId)
  const a = changes.at(-1)
  if (!a) return null
  const [markers, deliveries] = await Promise.all([loadDeploymentMarkers(ctx.client, a.deployment_ids.slice(0, 10)), loadDeliveries(ctx.client, alertId)])
  const unit = a.signal === 'cost_per_request' ? '/request' : '/h'
  const title = `${seriesTitle(a)}: ${SIGNAL_WORDS[a.signal]} ${formatPct(a.change_pct)}`
  const deployments = a.deployment_ids.length
    ? html`<table><thead><tr><th>#</th><th>deployment</th><th>service</th><th>deployed (marker)</th><th>version</th><th>commit</th></tr></thead><tbody>${a.deployment_ids.map((id, i) => {
        const m = markers.find((x) => x.deployment_id === id)
        return html`<tr><td>${i + 1}</td><td>${deploymentLink(id, ctx.file, m?.url)}</td><td>${m ? printable(m.service) : ''}</td><td>${m ? `${m.timestamp} UTC` : html`<span class="muted">seen in traffic, no marker</span>`}</td><td>${m?.version ?? ''}</td><td>${m?.commit ? html`<code>${m.commit}</code>` : ''}</td></tr>`
      })}</tbody></table><p class="muted">Most likely first: ranked by how well their share of the traffic explains the shift.</p>`
    : html`<p class="muted">No deployment seen near the change point.</p>`
  const body = html`<p><a href="/#alerts">← alert timeline</a></p>
<h1>${title}</h1>
<p><span class="badge ${a.status}">${a.status}</span> <span class="badge ${a.severity}">${a.severity}</span> <code>${a.alert_id}</code></p>
<section id="chart"><h2>The series around the break</h2>
<img class="chart" src="${alertHref(a.alert_id)}/chart.png" width="900" height="360" alt="${`Chart of ${title}: the series, its baseline band, the change point and the deployments`}">
</section>
<section id="facts"><h2>What broke</h2><dl class="facts">
<dt>team</dt><dd>${printable(a.team)}</dd>
<dt>environment</dt><dd>${printable(a.environment ?? 'production')}</dd>
<dt>endpoint</dt><dd>${name(a.endpoint, 'all endpoints')}</dd>
<dt>model</dt><dd>${name(a.model, 'all models')}</dd>
<dt>signal</dt><dd>${SIGNAL_WORDS[a.signal]} (${a.direction})</dd>
<dt>change</dt><dd>${usd(a.baseline)}${unit} → ${usd(a.current)}${unit} (<strong>${formatPct(a.change_pct)}</strong>)</dd>
<dt>since</dt><dd>${utc(a.started_at)} UTC (change point) · detected ${utc(a.detected_at)} UTC</dd>
${a.canary ? html`<dt>canary</dt><dd>caught in canary: <code>${printable(a.canary.deployment_id)}</code>, ${a.canary.traffic_pct}% of traffic, <strong>${formatPct(a.canary.change_pct)}</strong> per request (against <code>${printable(a.canary.compared_with)}</code> over the minutes both served)</dd>` : ''}
<dt>monthly impact</dt><dd>${usd(a.monthly_impact_usd)}/month</dd>
</dl></section>
<section id="deployments"><h2>Deployments</h2>${deployments}</section>
<section id="drivers"><h2>Drivers</h2>${driversTable(a)}</section>
<section id="history"><h2>State changes</h2><table><thead><tr><th>detected</th><th>state</th><th class="num">current</th><th class="num">change</th><th>severity</th></tr></thead>
<tbody>${changes.map((c) => html`<tr><td>${utc(c.detected_at)}</td><td><span class="badge ${c.status}">${c.status}</span></td><td class="num">${usd(c.current)}${unit}</td><td class="num">${formatPct(c.change_pct)}</td><td>${c.severity}</td></tr>`)}</tbody></table></section>
<section id="deliveries"><h2>Pages</h2>${
    deliveries.length
      ? html`<table><thead><tr><th>state</th><th>channel</th><th>outcome</th><th>at</th><th>detail</th></tr></thead><tbody>${deliveries.map((d) => html`<tr><td>${d.status}</td><td>${d.channel_name}</td><td>${d.outcome}</td><td>${d.delivered_at} UTC</td><td>${d.error}</td></tr>`)}</tbody></table>`
      : html`<p class="muted">Not paged yet.</p>`
  }</section>`
  return { title, body }
}

/** Until when an alert's chart runs: to now while it lasts (at most a day past its start), a while past its resolution. */
export function chartUntil(a: AlertRecord, now: number): number {
  const detected = Date.parse(a.detected_at)
  if (a.status === 'resolved') return detected + 30 * 60_000
  return Math.max(detected, Math.min(now, Date.parse(a.started_at) + 24 * 3_600_000))
}
