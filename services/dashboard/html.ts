/**
 * Server-rendered HTML without a template engine or a build step: the `html` tag escapes every
 * interpolated value (names from events are outside input: `<script>` in an endpoint is text),
 * unless it is already safe HTML made by this tag (`SafeHtml`). Pages carry no JavaScript, and
 * the Content-Security-Policy of server.ts forbids any.
 */

export class SafeHtml {
  readonly value: string
  constructor(value: string) {
    this.value = value
  }
  toString(): string {
    return this.value
  }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!)
}

function part(v: unknown): string {
  if (v === null || v === undefined || v === false) return ''
  if (v instanceof SafeHtml) return v.value
  if (Array.isArray(v)) return v.map(part).join('')
  return escapeHtml(String(v))
}

/** `html\`<td>${name}</td>\`` — values escaped, nested `html` fragments and arrays of them kept. */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1]!
  return new SafeHtml(out)
}

export function page(title: string, body: SafeHtml, opts: { refreshSeconds?: number } = {}): string {
  const nav = [{ href: '/', label: 'Overview' }]
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${opts.refreshSeconds ? html`<meta http-equiv="refresh" content="${opts.refreshSeconds}">` : ''}
<title>${title} · Burnwatch</title>
<link rel="stylesheet" href="/static/style.css">
</head>
<body>
<header><a class="brand" href="/">Burnwatch</a><nav>${nav.map((n) => html`<a href="${n.href}">${n.label}</a>`)}</nav></header>
<main>
${body}
</main>
<footer>Times in UTC · data from ClickHouse (cost_windows, cost_hourly, cost_hourly_env, cost_daily, alerts, deployments, alert_deliveries)</footer>
</body>
</html>
`.value
}

export const STYLE = `
:root { --fg: #111827; --muted: #6b7280; --line: #e5e7eb; --bg: #f9fafb; --up: #b91c1c; --down: #047857; --accent: #1f5fbf; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 "DejaVu Sans", system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; gap: 24px; align-items: center; padding: 10px 24px; background: #111827; }
header a { color: #f9fafb; text-decoration: none; }
header .brand { font-weight: bold; font-size: 16px; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 40px; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 16px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 16px; margin: 28px 0 8px; }
section { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 12px 16px; margin: 14px 0; }
section > h2:first-child { margin-top: 0; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 12px; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 10px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; letter-spacing: .04em; }
.card .value { font-size: 24px; font-weight: bold; }
.card .note { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
th { color: var(--muted); font-weight: normal; font-size: 12px; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.up { color: var(--up); } .down { color: var(--down); } .muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; border: 1px solid var(--line); }
.badge.firing, .badge.critical { background: #fee2e2; border-color: #fca5a5; }
.badge.updated, .badge.warning { background: #ffedd5; border-color: #fdba74; }
.badge.resolved, .badge.info { background: #dcfce7; border-color: #86efac; }
meter { width: 140px; height: 12px; vertical-align: middle; }
img.chart { width: 100%; max-width: 1100px; height: auto; border: 1px solid var(--line); border-radius: 6px; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 13px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 10px; overflow-x: auto; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
`
