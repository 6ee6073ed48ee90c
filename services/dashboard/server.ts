/**
 * The dashboard's HTTP server (node:http, server-rendered HTML, no JavaScript): served by
 * `burnwatch start` beside the other stages, and alone by `burnwatch ui`, which reads ClickHouse
 * with a read-only login. Every page only reads.
 *
 *   GET /                       spend now, budgets, the alert timeline, teams, endpoints, models
 *   GET /alerts/{id}            one alert: its chart, what broke, deployments, drivers, history, pages
 *   GET /alerts/{id}/chart.png  its chart, rendered as in the page's Slack thread, up to now
 *   GET /healthz
 *
 * Headers forbid scripts, frames and inline styles (Content-Security-Policy), so even a name
 * that slipped past escaping could not run. No secret is ever rendered: pages show only table
 * contents and the config's names, thresholds and budgets.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { ClickHouseClient } from '@clickhouse/client'
import type { ConfigFile } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import { renderChart } from '../notifier/chart.ts'
import { loadChartInput } from '../notifier/chart-data.ts'
import { html, page, STYLE } from './html.ts'
import { loadAlert } from './queries.ts'
import { chartUntil, renderAlert, renderOverview, OVERVIEW_SECTIONS, type Section, type ViewContext } from './views.ts'

export interface DashboardOptions {
  client: ClickHouseClient
  file: ConfigFile
  logger: Logger
  port: number
  host: string
  /** overview sections; default OVERVIEW_SECTIONS */
  sections?: readonly Section[]
  /** the dashboard's clock (ms); default Date.now */
  now?: () => number
}

export interface Dashboard {
  start(): Promise<{ url: string }>
  /** idempotent */
  stop(): Promise<void>
}

const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
}

class NotFound extends Error {}
const NOT_FOUND = html`<h1>Not found</h1><p>No such page or alert. <a href="/">Back to the overview</a>.</p>`

export function createDashboardServer(o: DashboardOptions): Dashboard {
  const log = o.logger.child({ component: 'dashboard' })
  const now = o.now ?? Date.now
  const sections = o.sections ?? OVERVIEW_SECTIONS
  /** rendered charts for a short while: a reload does not render again */
  const charts = new Map<string, { at: number; png: Buffer }>()

  const ctx = (): ViewContext => ({ client: o.client, file: o.file, now: now() })

  function send(res: ServerResponse, status: number, type: string, body: string | Buffer, extra: Record<string, string> = {}) {
    res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', ...SECURITY_HEADERS, ...extra })
    res.end(res.req.method === 'HEAD' ? undefined : body)
  }

  async function chartPng(alertId: string): Promise<Buffer> {
    const latest = (await loadAlert(o.client, alertId)).at(-1)
    if (!latest) throw new NotFound()
    const until = chartUntil(latest, now())
    const key = `${alertId}\u0000${latest.status}\u0000${latest.detected_at}\u0000${Math.floor(until / 60_000)}`
    const hit = charts.get(key)
    if (hit && Date.now() - hit.at < 30_000) return hit.png
    const input = await loadChartInput(o.client, latest, { until })
    if (!input.points.length) throw new NotFound()
    const { png } = await renderChart(input)
    charts.set(key, { at: Date.now(), png })
    if (charts.size > 50) charts.delete(charts.keys().next().value!)
    return png
  }

  async function route(req: IncomingMessage, res: ServerResponse) {
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n', { allow: 'GET, HEAD' })
    const path = new URL(req.url ?? '/', 'http://dashboard').pathname
    if (path === '/' || path === '/index.html') return send(res, 200, 'text/html; charset=utf-8', page('Overview', await renderOverview(ctx(), sections), { refreshSeconds: 60 }))
    if (path === '/static/style.css') return send(res, 200, 'text/css; charset=utf-8', STYLE, { 'cache-control': 'max-age=300' })
    if (path === '/healthz') return send(res, 200, 'text/plain; charset=utf-8', 'ok\n')
    if (path === '/favicon.ico') return send(res, 204, 'image/x-icon', '')
    const m = /^\/alerts\/([^/]+)(\/chart\.png)?$/.exec(path)
    if (m) {
      let id: string
      try {
        id = decodeURIComponent(m[1]!)
      } catch {
        return send(res, 400, 'text/plain; charset=utf-8', 'malformed alert ID in the URL\n')
      }
      if (m[2]) return send(res, 200, 'image/png', await chartPng(id))
      const view = await renderAlert(ctx(), id)
      if (!view) throw new NotFound()
      return send(res, 200, 'text/html; charset=utf-8', page(view.title, view.body))
    }
    throw new NotFound()
  }

  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (err instanceof NotFound) return send(res, 404, 'text/html; charset=utf-8', page('Not found', NOT_FOUND))
      log.error({ err, url: req.url }, 'dashboard request failed')
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error; see the Burnwatch log\n')
      else res.destroy()
    })
  })

  let stopping: Promise<void> | null = null
  return {
    async start() {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(o.port, o.host, () => {
          server.off('error', reject)
          resolve()
        })
      })
      const { port } = server.address() as AddressInfo
      const host = o.host === '0.0.0.0' || o.host === '::' ? '127.0.0.1' : o.host.includes(':') ? `[${o.host}]` : o.host
      const url = `http://${host}:${port}`
      log.info({ url }, `dashboard at ${url}`)
      return { url }
    },
    stop() {
      stopping ??= new Promise<void>((resolve) => {
        if (!server.listening) return resolve()
        server.closeAllConnections()
        server.close(() => resolve())
      })
      return stopping
    },
  }
}
