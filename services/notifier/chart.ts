/**
 * The chart of a page: the series around the break as a PNG, made by libraries made for charts —
 * a Vega-Lite spec (the chart grammar) compiled to Vega, rendered to SVG in-process (no browser),
 * and rasterized by resvg (Rust, shipped as npm platform packages) with a font shipped from npm
 * (DejaVu Sans), so text renders the same on every machine, with or without system fonts.
 *
 * What it shows: the broken signal per bucket (cost per request, or burn rate for burn-rate and
 * budget breaks), the baseline and its band (± 2σ of the buckets before the change point), the
 * change point, the deployment markers, and the current level since the change point.
 *
 * `chartSpec` is pure (a unit test can read it); `renderChart` does the drawing.
 */
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { Resvg } from '@resvg/resvg-js'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import type { AlertRecord } from '../../schemas/alert.ts'
import { printable } from '../../shared/text.ts'
import { formatPct, formatUsd } from './render.ts'

export interface ChartPoint {
  /** bucket start, ms since epoch */
  t: number
  /** the signal in this bucket: USD per request, or USD per hour */
  value: number
  requests: number
}

export interface ChartDeployment {
  deployment_id: string
  /** when it was deployed (marker) or first seen in the series' traffic, ms since epoch */
  at: number
  source: 'marker' | 'traffic'
}

export interface ChartInput {
  alert: Pick<AlertRecord, 'alert_id' | 'team' | 'endpoint' | 'model' | 'signal' | 'baseline' | 'current' | 'change_pct' | 'started_at' | 'detected_at' | 'status' | 'environment'>
  points: ChartPoint[]
  deployments: ChartDeployment[]
  bucketMinutes: number
}

export interface RenderedChart {
  png: Buffer
  /** pixels of the PNG */
  width: number
  height: number
  /** where things are in the PNG, in its pixels (tests look there) */
  marks: { changePointX: number; plot: { left: number; top: number; width: number; height: number } }
}

/** CSS pixels of the chart; the PNG is `SCALE` times larger for sharp text on high-density screens. */
export const CHART_WIDTH = 900
export const CHART_HEIGHT = 360
export const SCALE = 2
const FONT = 'DejaVu Sans'
export const COLORS = { series: '#1f5fbf', baseline: '#6b7280', band: '#9ca3af', change: '#d62728', current: '#e8750a', deploy: '#7b3fb5' }

const require = createRequire(import.meta.url)
const FONT_DIR = join(dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf')
const FONT_FILES = ['DejaVuSans.ttf', 'DejaVuSans-Bold.ttf'].map((f) => join(FONT_DIR, f))

export function signalOf(a: Pick<AlertRecord, 'signal'>): { field: 'cost_per_request' | 'burn_rate'; label: string; unit: string } {
  return a.signal === 'cost_per_request' ? { field: 'cost_per_request', label: 'cost per request', unit: 'USD/request' } : { field: 'burn_rate', label: 'burn rate', unit: 'USD/hour' }
}

/** `search · POST /v1/x · gpt-4o`, `[staging] search · team total`: names without control characters. */
export function seriesTitle(a: Pick<AlertRecord, 'team' | 'endpoint' | 'model' | 'environment'>): string {
  const parts = [a.team, a.endpoint ?? 'all endpoints', a.model ?? 'all models']
  if (a.endpoint === null && a.model === null) parts.splice(1, 2, 'team total')
  const env = a.environment !== undefined && a.environment !== 'production' ? `[${printable(a.environment)}] ` : ''
  return env + parts.map((p) => printable(p)).join(' · ')
}

/** Mean and standard deviation of the buckets before the change point (the baseline's noise). */
function noiseBefore(points: readonly ChartPoint[], startedAt: number): number {
  const before = points.filter((p) => p.t < startedAt && Number.isFinite(p.value)).map((p) => p.value)
  if (before.length < 2) return 0
  const mean = before.reduce((s, v) => s + v, 0) / before.length
  return Math.sqrt(before.reduce((s, v) => s + (v - mean) ** 2, 0) / (before.length - 1))
}

/** A d3 money format with enough decimals for the values charted: $0.0015, $12.5, $1,200. */
function moneyFormat(max: number): string {
  const digits = max > 0 && max < 1 ? Math.min(8, Math.ceil(-Math.log10(max)) + 2) : max < 100 ? 1 : 0
  return `$,.${digits}~f`
}

const hhmm = (ms: number) => new Date(ms).toISOString().slice(11, 16)

/** The Vega-Lite spec of the chart. Pure. */
export function chartSpec(input: ChartInput): TopLevelSpec {
  const a = input.alert
  const sig = signalOf(a)
  const started = Date.parse(a.started_at)
  const points = input.points.filter((p) => Number.isFinite(p.value))
  const tMin = Math.min(points[0]?.t ?? started, started)
  const tMax = Math.max(points.at(-1)?.t ?? Date.parse(a.detected_at), Date.parse(a.detected_at)) + input.bucketMinutes * 60_000
  const sd = noiseBefore(points, started)
  const fmt = (v: number) => (sig.field === 'cost_per_request' ? formatUsd(v) : `${formatUsd(v)}/h`)
  const deployments = input.deployments.filter((d) => d.at >= tMin && d.at <= tMax).slice(0, 6)
  // the domain is set once (first layer); every layer shares the x scale
  const x = { field: 't', type: 'temporal' as const, scale: { type: 'utc' as const }, axis: { title: null, format: '%H:%M', grid: false, tickCount: 8 } }
  const xFirst = { ...x, scale: { type: 'utc' as const, domain: [tMin, tMax] } }
  const y = { type: 'quantitative' as const, axis: { title: sig.unit, format: moneyFormat(Math.max(a.baseline, a.current, ...points.map((p) => p.value))), tickCount: 5 } }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    width: CHART_WIDTH,
    height: CHART_HEIGHT,
    autosize: { type: 'fit', contains: 'padding' },
    background: 'white',
    padding: { left: 10, right: 20, top: 10, bottom: 10 },
    title: {
      text: `${seriesTitle(a)} — ${sig.label} ${formatPct(a.change_pct)}`,
      subtitle: `baseline ${fmt(a.baseline)} → now ${fmt(a.current)} · change point ${hhmm(started)} UTC · ${input.bucketMinutes}-min buckets`,
      anchor: 'start',
      fontSize: 15,
      subtitleFontSize: 12,
      subtitleColor: '#374151',
    },
    config: { font: FONT, view: { stroke: null }, axis: { labelFontSize: 11, titleFontSize: 11, labelColor: '#374151', titleColor: '#374151' } },
    layer: [
      // the baseline band (± 2σ of the buckets before the change point) and the baseline
      {
        data: { values: [{ t: tMin, t2: tMax, lo: Math.max(0, a.baseline - 2 * sd), hi: a.baseline + 2 * sd }] },
        mark: { type: 'rect', color: COLORS.band, opacity: 0.22 },
        encoding: { x: xFirst, x2: { field: 't2' }, y: { ...y, field: 'lo' }, y2: { field: 'hi' } },
      },
      {
        data: { values: [{ t: tMin, t2: tMax, v: a.baseline }] },
        mark: { type: 'rule', color: COLORS.baseline, strokeWidth: 1.5, strokeDash: [6, 3] },
        encoding: { x, x2: { field: 't2' }, y: { ...y, field: 'v' } },
      },
      // the series
      {
        data: { values: points.map((p) => ({ t: p.t + (input.bucketMinutes * 60_000) / 2, v: p.value })) },
        mark: { type: 'line', color: COLORS.series, strokeWidth: 2, point: { size: 14, filled: true, color: COLORS.series } },
        encoding: { x, y: { ...y, field: 'v' } },
      },
      // the current level since the change point
      {
        data: { values: [{ t: started, t2: tMax, v: a.current, label: `now ${fmt(a.current)}` }] },
        layer: [
          { mark: { type: 'rule', color: COLORS.current, strokeWidth: 2.5 }, encoding: { x, x2: { field: 't2' }, y: { ...y, field: 'v' } } },
          // the label over a white halo, readable where it crosses the series
          ...[{ stroke: 'white', strokeWidth: 4 }, {}].map((halo) => ({ mark: { type: 'text' as const, align: 'right' as const, baseline: 'top' as const, dy: 5, dx: -2, fontWeight: 'bold' as const, color: COLORS.current, fontSize: 12, ...halo }, encoding: { x: { ...x, field: 't2' }, y: { ...y, field: 'v' }, text: { field: 'label' } } })),
        ],
      },
      // deployment markers, labelled on the side with room
      ...[false, true].flatMap((right) => {
        const mid = tMin + 0.6 * (tMax - tMin)
        const these = deployments.map((d, row) => ({ ...d, row })).filter((d) => (d.at > mid) === right)
        if (!these.length) return []
        return [
          {
            data: { values: these.map((d) => ({ t: d.at, label: `⬆ ${printable(d.deployment_id).slice(0, 40)}`, row: d.row })) },
            layer: [
              { mark: { type: 'rule' as const, color: COLORS.deploy, strokeWidth: 1.5, strokeDash: [2, 2] }, encoding: { x } },
              {
                mark: { type: 'text' as const, align: right ? ('right' as const) : ('left' as const), baseline: 'top' as const, dx: right ? -4 : 4, color: COLORS.deploy, fontSize: 11 },
                encoding: { x, y: { value: 0 }, yOffset: { field: 'row', type: 'quantitative' as const, scale: { domain: [0, 5], range: [2, 72] } }, text: { field: 'label' } },
              },
            ],
          },
        ]
      }),
      // the change point
      {
        data: { values: [{ t: started, label: `change point ${hhmm(started)}` }] },
        layer: [
          { mark: { type: 'rule', color: COLORS.change, strokeWidth: 2.5 }, encoding: { x } },
          { mark: { type: 'text', align: 'right', baseline: 'bottom', dx: -4, color: COLORS.change, fontWeight: 'bold', fontSize: 12 }, encoding: { x, y: { value: { expr: 'height - 4' } }, text: { field: 'label' } } },
        ],
      },
    ],
  } as TopLevelSpec
}

/** Vega-Lite's compile warnings (e.g. a domain it merges with itself) are not the operator's concern. */
const quietCompiler = {
  level() {
    return this
  },
  error(...args: readonly unknown[]) {
    throw new Error(`chart spec: ${args.map(String).join(' ')}`)
  },
  warn() {
    return this
  },
  info() {
    return this
  },
  debug() {
    return this
  },
}

/** Renders the chart to a PNG (SCALE × the CSS size). */
export async function renderChart(input: ChartInput): Promise<RenderedChart> {
  const view = new vega.View(vega.parse(compile(chartSpec(input), { logger: quietCompiler as never }).spec), { renderer: 'none' })
  try {
    const svg = await view.toSVG()
    // the plot's origin in the SVG: the view's padding plus the origin (axes and title) within it
    const pad = view.padding() as { left?: number; top?: number }
    const ox = view.origin()[0] + (pad.left ?? 0)
    const oy = view.origin()[1] + (pad.top ?? 0)
    const xScale = view.scale('x') as ((v: number) => number) | undefined
    const cssWidth = view.width()
    const svgWidth = Number(/<svg[^>]*\swidth="([\d.]+)"/.exec(svg)?.[1] ?? CHART_WIDTH)
    const scale = (CHART_WIDTH * SCALE) / svgWidth
    const resvg = new Resvg(svg, { fitTo: { mode: 'width', value: CHART_WIDTH * SCALE }, font: { fontFiles: FONT_FILES, loadSystemFonts: false, defaultFontFamily: FONT }, background: 'white' })
    const image = resvg.render()
    const changeX = xScale ? xScale(Date.parse(input.alert.started_at)) : NaN
    return {
      png: image.asPng(),
      width: image.width,
      height: image.height,
      marks: {
        changePointX: Math.round((ox + changeX) * scale),
        plot: { left: Math.round(ox * scale), top: Math.round(oy * scale), width: Math.round(cssWidth * scale), height: Math.round(view.height() * scale) },
      },
    }
  } finally {
    view.finalize()
  }
}
