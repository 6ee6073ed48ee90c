// The chart of a page, rendered for real (Vega-Lite → SVG → resvg PNG), then decoded and looked
// at: its size, the change point where the break starts, the series higher after it than before.
import { describe, expect, it } from 'vitest'
import { chartSpec, CHART_HEIGHT, CHART_WIDTH, COLORS, renderChart, SCALE, type ChartInput } from '../../services/notifier/chart.ts'
import { chartSpan } from '../../services/notifier/chart-data.ts'
import { printable } from '../../shared/text.ts'
import { decodePng, readChart, writeArtifact } from '../support/png.ts'
import { mulberry32 } from '../../services/demo/traffic.ts'

function input(over: Partial<ChartInput['alert']> = {}): ChartInput {
  const rand = mulberry32(7)
  const startedAt = Date.parse('2026-11-22T18:00:00.000Z')
  const alert = { alert_id: 'a-1', status: 'firing' as const, team: 'search', endpoint: 'POST /v1/summarize', model: 'claude-3-5-haiku', signal: 'cost_per_request' as const, baseline: 0.0012, current: 0.00168, change_pct: 40, started_at: new Date(startedAt).toISOString(), detected_at: new Date(startedAt + 12 * 60_000).toISOString(), ...over }
  const span = chartSpan(alert)
  const points = []
  for (let t = span.from; t <= span.to; t += span.bucketMinutes * 60_000) points.push({ t, requests: 300, value: (t < startedAt ? 0.0012 : 0.00168) * (1 + (rand() - 0.5) * 0.1) })
  return { alert, points, deployments: [{ deployment_id: 'search-api-2026.11.22-7f3c2e1', at: startedAt, source: 'marker' }, { deployment_id: 'search-api-r3', at: startedAt - 90 * 60_000, source: 'traffic' }], bucketMinutes: span.bucketMinutes }
}

describe('chart', () => {
  it('is a PNG of the expected size with the break inside it: the change point in the plot, the series higher after it', async () => {
    const chart = await renderChart(input())
    const path = writeArtifact('chart-unit.png', chart.png)
    const pic = decodePng(chart.png)
    expect([pic.width, pic.height]).toEqual([CHART_WIDTH * SCALE, CHART_HEIGHT * SCALE])
    expect([chart.width, chart.height]).toEqual([pic.width, pic.height])
    const seen = readChart(pic, COLORS)
    const { plot, changePointX } = chart.marks
    // the red rule is where the renderer says the change point is, inside the plot, and spans it
    expect(Math.abs(seen.changeX - changePointX), path).toBeLessThanOrEqual(3)
    expect(changePointX).toBeGreaterThan(plot.left + plot.width / 2)
    expect(changePointX).toBeLessThan(plot.left + plot.width)
    expect(seen.changeHeight).toBeGreaterThan(plot.height * 0.8)
    // the series is drawn on both sides, and higher (smaller row) after the break
    expect(seen.seriesBefore.pixels).toBeGreaterThan(200)
    expect(seen.seriesAfter.pixels).toBeGreaterThan(50)
    expect(seen.seriesAfter.meanRow).toBeLessThan(seen.seriesBefore.meanRow - 20)
  })

  it('puts the baseline band, the current level, the change point and the deployments in the spec, names without control characters', () => {
    const spec = JSON.stringify(chartSpec(input({ endpoint: 'POST /v1/\u001b[31mred\u001b[0m' })))
    expect(spec).toContain('search-api-2026.11.22-7f3c2e1')
    expect(spec).toContain('change point 18:00')
    expect(spec).toContain('now $0.00168')
    expect(spec).toContain('POST /v1/red')
    expect(spec).not.toContain('\\u001b')
    // a burn-rate break charts burn rate
    expect(JSON.stringify(chartSpec(input({ signal: 'burn_rate', baseline: 40, current: 60 })))).toContain('USD/hour')
  })

  it('spans at least three hours of baseline with at most 120 buckets', () => {
    const s = chartSpan({ started_at: '2026-11-22T18:00:00.000Z', detected_at: '2026-11-22T18:10:00.000Z' })
    expect(Date.parse('2026-11-22T18:00:00.000Z') - s.from).toBeGreaterThanOrEqual(3 * 3_600_000)
    expect((s.to - s.from) / (s.bucketMinutes * 60_000)).toBeLessThanOrEqual(120)
  })
})

describe('printable', () => {
  it('drops terminal escape sequences and control characters, keeps lines when asked', () => {
    expect(printable('a\u001b[31mred\u001b[0m\u001b]0;title\u0007b\u009b2Jc\u202eok')).toBe('aredbcok')
    expect(printable('x\r\ny\tz\u0000', { multiline: true })).toBe('x\ny\tz')
    expect(printable('x\ny')).toBe('xy')
  })
})
