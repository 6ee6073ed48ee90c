/**
 * Slack page rendering: a pure function of alert records and a few settings, no I/O, so it runs
 * the same in the Slack adapter, the console sink and a unit test.
 *
 * Trust boundary: team, endpoint, model and deployment IDs come from usage events (outside
 * input) and are escaped for Slack mrkdwn (&, <, >) everywhere they appear, so an endpoint named
 * `<!channel>` is inert text. The on-call mention and the URL templates come from the operator's
 * config file and are used as given (a mention must stay active to page anybody).
 */
import type { KnownBlock } from '@slack/web-api'
import type { AlertRecord, Drivers } from '../../schemas/alert.ts'

export interface RenderOptions {
  /** `https://deploys.example.com/{deployment_id}`; ids are shown as code when absent */
  deploymentUrlTemplate?: string | null
  /** link to a ClickHouse console shown beside the query */
  clickhouseConsoleUrl?: string | null
  /** who is paged, from the team's config, e.g. `<!subteam^S012345>` */
  mention?: string | null
  /** the dashboard's base URL (config `public_url`): pages link to their alert's page */
  publicUrl?: string | null
}

export interface SlackMessage {
  /** plain-text fallback for notifications and clients without blocks (mrkdwn-escaped) */
  text: string
  blocks: KnownBlock[]
}

/** How many series of a grouped page are spelled out; the rest are counted. */
export const MAX_SERIES_IN_PAGE = 8
const SECTION_LIMIT = 2900
const HEADER_LIMIT = 150

// ---------------------------------------------------------------------------------------------
// escaping

/** Escapes Slack mrkdwn control characters so outside text cannot form links or mentions. */
export function escapeMrkdwn(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

/**
 * A ClickHouse string literal for any text: backslash escapes for `\`, `'` and control
 * characters; a backtick becomes `\x60` so the literal cannot close a Slack code block.
 */
export function sqlStringLiteral(s: string): string {
  const body = s.replace(/[\\'`\n\r\t\0]/g, (c) => {
    switch (c) {
      case '\\':
        return '\\\\'
      case "'":
        return "\\'"
      case '`':
        return '\\x60'
      case '\n':
        return '\\n'
      case '\r':
        return '\\r'
      case '\t':
        return '\\t'
      default:
        return '\\0'
    }
  })
  return `'${body}'`
}

/** The deployment link, or null when no template is configured or the result is not http(s). */
export function deploymentUrl(template: string | null | undefined, deploymentId: string): string | null {
  if (!template) return null
  const url = template.split('{deployment_id}').join(encodeURIComponent(deploymentId))
  return /^https?:\/\//i.test(url) ? url : null
}

/** The alert's page on the dashboard, or null without a public URL. */
export function alertPageUrl(publicUrl: string | null | undefined, alertId: string): string | null {
  if (!publicUrl || !/^https?:\/\//i.test(publicUrl)) return null
  return `${publicUrl.replace(/\/+$/, '')}/alerts/${encodeURIComponent(alertId)}`
}

/** ` · <url|chart, drivers and deployments>` for a context line, or '' without a public URL. */
function alertPageLink(alertId: string, opts: RenderOptions): string {
  const url = alertPageUrl(opts.publicUrl, alertId)
  return url ? ` · <${escapeMrkdwn(url)}|chart, drivers and deployments>` : ''
}

// ---------------------------------------------------------------------------------------------
// words and numbers

export const SIGNAL_WORDS: Record<AlertRecord['signal'], string> = {
  cost_per_request: 'cost per request',
  burn_rate: 'burn rate',
  budget_burn: 'budget burn rate',
}

export const DRIVER_WORDS: Record<Drivers['primary'], string> = {
  input_tokens_per_request: 'input tokens/request',
  output_tokens_per_request: 'output tokens/request',
  cache_reads: 'cache reads',
  price: 'price per token (catalog or reported cost)',
  error_share: 'error/retry share',
  model_mix: 'model mix (traffic moved between models)',
  volume: 'request volume',
}

export function formatUsd(v: number): string {
  if (!Number.isFinite(v)) return String(v)
  const sign = v < 0 ? '-' : ''
  const a = Math.abs(v)
  if (a >= 1000) return `${sign}$${Math.round(a).toLocaleString('en-US')}`
  if (a >= 1) return `${sign}$${a.toFixed(2)}`
  if (a === 0) return '$0'
  return `${sign}$${a.toPrecision(3)}`
}

export function formatPct(v: number): string {
  const digits = Math.abs(v) < 10 ? 1 : 0
  return `${v >= 0 ? '+' : ''}${v.toFixed(digits)}%`
}

function formatSignalValue(signal: AlertRecord['signal'], v: number): string {
  return signal === 'cost_per_request' ? `${formatUsd(v)}/request` : `${formatUsd(v)}/h`
}

function utc(iso: string): string {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? iso : `${d.toISOString().slice(0, 16).replace('T', ' ')} UTC`
}

/** Slack date token: shown in the reader's time zone, with the UTC text as fallback. */
function slackDate(iso: string): string {
  const ms = Date.parse(iso)
  if (Number.isNaN(ms)) return escapeMrkdwn(iso)
  return `<!date^${Math.floor(ms / 1000)}^{date_short_pretty} {time}|${utc(iso)}>`
}

function duration(fromIso: string, toIso: string): string | null {
  const ms = Date.parse(toIso) - Date.parse(fromIso)
  if (!Number.isFinite(ms) || ms < 0) return null
  const m = Math.round(ms / 60_000)
  if (m < 60) return `${m} min`
  const h = Math.floor(m / 60)
  return m % 60 ? `${h} h ${m % 60} min` : `${h} h`
}

/** Series in words (escaped): `POST /v1/x · gpt-4o`, or `team total`. */
export function seriesLabel(a: Pick<AlertRecord, 'endpoint' | 'model'>): string {
  if (a.endpoint === null && a.model === null) return 'team total'
  return `${a.endpoint === null ? 'all endpoints' : escapeMrkdwn(a.endpoint)} · ${a.model === null ? 'all models' : escapeMrkdwn(a.model)}`
}

/** The drivers in plain words, largest first: `output tokens/request +38 pp`. */
export function describeDrivers(d: Drivers, max = 3): string {
  const keys = ['input_tokens_per_request', 'output_tokens_per_request', 'cache_reads', 'price', 'error_share', 'model_mix'] as const
  const parts = keys
    .map((k) => ({ k, v: d[k] ?? 0 }))
    .filter((x) => Number.isFinite(x.v) && Math.abs(x.v) >= 0.5)
    .sort((a, b) => Math.abs(b.v) - Math.abs(a.v))
    .slice(0, max)
    .map((x) => `${DRIVER_WORDS[x.k]} ${x.v >= 0 ? '+' : '−'}${Math.abs(x.v).toFixed(Math.abs(x.v) < 10 ? 1 : 0)} pp`)
  if (d.primary === 'volume') parts.unshift('request volume (more calls)')
  return parts.length ? parts.join(', ') : `mainly ${DRIVER_WORDS[d.primary]}`
}

/**
 * A ClickHouse query reproducing the series' numbers by minute, for a human to paste (not
 * executed here). Names are SQL string literals, escaped.
 */
export function reproduceQuery(a: Pick<AlertRecord, 'team' | 'endpoint' | 'model' | 'started_at'>): string {
  const since = new Date(Date.parse(a.started_at) - 2 * 3_600_000)
  const sinceText = Number.isNaN(since.getTime()) ? '1970-01-01 00:00:00' : since.toISOString().slice(0, 19).replace('T', ' ')
  const where = [`team = ${sqlStringLiteral(a.team)}`]
  if (a.endpoint !== null) where.push(`endpoint = ${sqlStringLiteral(a.endpoint)}`)
  if (a.model !== null) where.push(`model = ${sqlStringLiteral(a.model)}`)
  where.push(`window_start >= toDateTime('${sinceText}', 'UTC')`)
  return [
    'SELECT',
    '    window_start,',
    '    sum(requests) AS window_requests,',
    '    sum(cost_usd) / nullIf(sum(requests), 0) AS cost_per_request,',
    '    sum(cost_usd) * 60 AS burn_usd_per_hour  -- 1-minute windows',
    'FROM cost_windows',
    `WHERE ${where.join('\n  AND ')}`,
    'GROUP BY window_start',
    'ORDER BY window_start',
  ].join('\n')
}

/**
 * For plain_text fields (the header): Slack does not parse them, but angle brackets are swapped
 * for look-alikes anyway so no client or copy-paste can turn a name into a mention.
 */
function plainSafe(s: string): string {
  return s.replace(/</g, '‹').replace(/>/g, '›')
}

function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`
}

function deploymentLinks(ids: readonly string[], opts: RenderOptions, max = 5): string {
  if (!ids.length) return 'none seen near the change point'
  const shown = ids.slice(0, max).map((id) => {
    const url = deploymentUrl(opts.deploymentUrlTemplate, id)
    const label = escapeMrkdwn(id).replace(/\|/g, '¦')
    return url ? `<${escapeMrkdwn(url)}|${label}>` : `\`${label.replace(/`/g, "'")}\``
  })
  return shown.join(', ') + (ids.length > max ? ` and ${ids.length - max} more` : '')
}

// ---------------------------------------------------------------------------------------------
// state of a page

/** The state a page shows: resolved when every series resolved, worse when any got worse. */
export function pageState(alerts: readonly AlertRecord[]): 'firing' | 'updated' | 'resolved' {
  if (alerts.length && alerts.every((a) => a.status === 'resolved')) return 'resolved'
  return alerts.some((a) => a.status === 'updated') ? 'updated' : 'firing'
}

const SEVERITY_RANK = { info: 0, warning: 1, critical: 2 } as const

function worstSeverity(alerts: readonly AlertRecord[]): AlertRecord['severity'] {
  return alerts.reduce<AlertRecord['severity']>((w, a) => (SEVERITY_RANK[a.severity] > SEVERITY_RANK[w] ? a.severity : w), 'info')
}

function stateEmoji(state: 'firing' | 'updated' | 'resolved'): string {
  return state === 'resolved' ? '✅' : state === 'updated' ? '🔺' : '🚨'
}

/**
 * "caught in canary: r778, 12% of traffic, +45% per request": `id` is the canary's ID as the
 * caller renders it (plain, or a mrkdwn link).
 */
export function canaryLine(c: NonNullable<AlertRecord['canary']>, id: string = c.deployment_id): string {
  const share = c.traffic_pct >= 10 || c.traffic_pct === 0 ? Math.round(c.traffic_pct).toString() : c.traffic_pct.toFixed(1)
  return `caught in canary: ${id}, ${share}% of traffic, ${formatPct(c.change_pct)} per request`
}

function seriesDetails(a: AlertRecord, opts: RenderOptions): string {
  const resolved = a.status === 'resolved'
  const canary = a.canary ? [`🐤 *${canaryLine(a.canary, deploymentLinks([a.canary.deployment_id], opts))}* (against ${deploymentLinks([a.canary.compared_with], opts)} over the minutes both served)`] : []
  const lines = [
    `*What broke:* ${SIGNAL_WORDS[a.signal]} of ${seriesLabel(a)} (team *${escapeMrkdwn(a.team)}*)${resolved ? ' — *resolved*' : a.status === 'updated' ? ' — *worse*' : ''}`,
    `*Change:* ${formatSignalValue(a.signal, a.baseline)} → ${formatSignalValue(a.signal, a.current)} (*${formatPct(a.change_pct)}*, ${a.direction})`,
    `*Since:* ${slackDate(a.started_at)} (change point) · detected ${slackDate(a.detected_at)}`,
    ...canary,
    `*Deployments (most likely first):* ${deploymentLinks(a.deployment_ids, opts)}`,
    `*Drivers:* ${describeDrivers(a.drivers)}`,
    `*Monthly impact:* ${a.monthly_impact_usd >= 0 ? '+' : ''}${formatUsd(a.monthly_impact_usd)}/month · severity *${a.severity}*`,
  ]
  return lines.join('\n')
}

function queryBlock(a: AlertRecord, opts: RenderOptions): string {
  const consoleLink = opts.clickhouseConsoleUrl && /^https?:\/\//i.test(opts.clickhouseConsoleUrl) ? ` (<${escapeMrkdwn(opts.clickhouseConsoleUrl)}|open the console>)` : ''
  return `*Dig in with ClickHouse*${consoleLink}:\n\`\`\`${escapeMrkdwn(reproduceQuery(a))}\`\`\``
}

function headline(alerts: readonly AlertRecord[]): { plain: string; mrkdwn: string } {
  const first = alerts[0]!
  const state = pageState(alerts)
  // the environment comes from events: only name characters reach the headline
  const environment = first.environment !== undefined && first.environment !== 'production' ? `[${first.environment.replace(/[^\w.-]/g, '?')}] ` : ''
  const prefix = (state === 'resolved' ? 'Resolved: ' : state === 'updated' ? 'Worse: ' : '') + environment
  if (alerts.length === 1) {
    const what = `${SIGNAL_WORDS[first.signal]} ${formatPct(first.change_pct)} on`
    return {
      plain: `${stateEmoji(state)} ${prefix}${first.team}: ${what} ${first.endpoint === null && first.model === null ? 'team total' : [first.endpoint ?? 'all endpoints', first.model ?? 'all models'].join(' · ')}`,
      mrkdwn: `${prefix}${escapeMrkdwn(first.team)}: ${what} ${seriesLabel(first)}`,
    }
  }
  const dep = first.deployment_ids[0]
  const tail = dep === undefined ? '' : ` after ${dep}`
  return {
    plain: `${stateEmoji(state)} ${prefix}${first.team}: ${alerts.length} series broke trend${tail}`,
    mrkdwn: `${prefix}${escapeMrkdwn(first.team)}: ${alerts.length} series broke trend${dep === undefined ? '' : ` after ${escapeMrkdwn(dep)}`}`,
  }
}

/**
 * The page (the thread's parent): one alert, or a group of alerts of one team that broke
 * together with the same deployment. Rendered with each alert's latest record, so the same
 * function gives the first page and the edited parent showing the current state.
 */
export function renderPage(alerts: readonly AlertRecord[], opts: RenderOptions = {}): SlackMessage {
  if (!alerts.length) throw new TypeError('renderPage needs at least one alert')
  const state = pageState(alerts)
  const head = headline(alerts)
  const severity = worstSeverity(alerts)
  const blocks: KnownBlock[] = [{ type: 'header', text: { type: 'plain_text', text: truncate(plainSafe(head.plain), HEADER_LIMIT), emoji: true } }]
  // a downward break (a saving) is a notice in the channel: nobody is paged for it
  const mention = opts.mention && state !== 'resolved' && alerts.some((a) => a.direction === 'up') ? `${opts.mention} ` : ''
  const intro =
    state === 'resolved'
      ? `All series are back within half the threshold. Severity was *${severity}*.`
      : `${mention}AI spend broke trend — severity *${severity}*.${alerts.length > 1 ? ` ${alerts.length} series share the same first deployment.` : ''}`
  blocks.push({ type: 'section', text: { type: 'mrkdwn', text: intro } })
  const shown = alerts.slice(0, MAX_SERIES_IN_PAGE)
  for (const a of shown) {
    if (blocks.length > 1) blocks.push({ type: 'divider' })
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(seriesDetails(a, opts), SECTION_LIMIT) } })
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(queryBlock(a, opts), SECTION_LIMIT) } })
  }
  if (alerts.length > shown.length) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `…and ${alerts.length - shown.length} more series of this team (see the thread).` }] })
  blocks.push({
    type: 'context',
    elements: [{ type: 'mrkdwn', text: `alert ${shown.map((a) => `\`${escapeMrkdwn(a.alert_id).replace(/`/g, "'")}\``).join(', ')}${alertPageLink(alerts[0]!.alert_id, opts)} · updates and the resolution follow in this thread` }],
  })
  const first = alerts[0]!
  const text =
    `${mention}${head.mrkdwn}` +
    (alerts.length === 1 ? ` (${formatSignalValue(first.signal, first.baseline)} → ${formatSignalValue(first.signal, first.current)})` : '') +
    ` since ${utc(first.started_at)}; deployments: ${first.deployment_ids.length ? first.deployment_ids.slice(0, 3).map(escapeMrkdwn).join(', ') : 'none'}; ${formatUsd(alerts.reduce((s, a) => s + a.monthly_impact_usd, 0))}/month`
  return { text: truncate(text, 3000), blocks }
}

/**
 * A reply in the page's thread for a state change: `updated` → "worse: …" (with the on-call
 * mention), `resolved` → "resolved …", `firing` → another series joining an existing page.
 */
export function renderThreadReply(alert: AlertRecord, opts: RenderOptions = {}, previous?: AlertRecord | null): SlackMessage {
  const a = alert
  const series = `${SIGNAL_WORDS[a.signal]} of ${seriesLabel(a)}`
  let text: string
  if (a.status === 'updated') {
    const was = previous ? ` (was ${formatPct(previous.change_pct)}, ${formatSignalValue(previous.signal, previous.current)})` : ''
    text = `${opts.mention && a.direction === 'up' ? `${opts.mention} ` : ''}🔺 *worse:* ${series} is now ${formatSignalValue(a.signal, a.current)}, *${formatPct(a.change_pct)}* vs baseline ${formatSignalValue(a.signal, a.baseline)}${was}. Drivers: ${describeDrivers(a.drivers)}. Monthly impact ${formatUsd(a.monthly_impact_usd)}/month, severity *${a.severity}*.`
  } else if (a.status === 'resolved') {
    const lasted = duration(a.started_at, a.detected_at)
    text = `✅ *resolved:* ${series} is back to ${formatSignalValue(a.signal, a.current)} (baseline ${formatSignalValue(a.signal, a.baseline)}, ${formatPct(a.change_pct)}) at ${slackDate(a.detected_at)}${lasted ? `; the break lasted ${lasted}` : ''}.`
  } else {
    text = `${opts.mention && a.direction === 'up' ? `${opts.mention} ` : ''}🚨 *also broke:* ${series}: ${formatSignalValue(a.signal, a.baseline)} → ${formatSignalValue(a.signal, a.current)} (*${formatPct(a.change_pct)}*) since ${slackDate(a.started_at)}; deployments ${deploymentLinks(a.deployment_ids, opts)}.${a.canary ? ` ${canaryLine(a.canary, deploymentLinks([a.canary.deployment_id], opts))}.` : ''} Drivers: ${describeDrivers(a.drivers)}. Monthly impact ${formatUsd(a.monthly_impact_usd)}/month.`
  }
  const blocks: KnownBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text: truncate(text, SECTION_LIMIT) } }]
  const link = alertPageLink(a.alert_id, opts)
  if (link) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `alert \`${escapeMrkdwn(a.alert_id).replace(/`/g, "'")}\`${link}` }] })
  if (a.status === 'firing') blocks.push({ type: 'section', text: { type: 'mrkdwn', text: truncate(queryBlock(a, opts), SECTION_LIMIT) } })
  const fallback = `${a.status === 'updated' ? 'worse' : a.status === 'resolved' ? 'resolved' : 'also broke'}: ${escapeMrkdwn(a.team)} ${series} ${formatPct(a.change_pct)}`
  return { text: truncate(fallback, 3000), blocks }
}
