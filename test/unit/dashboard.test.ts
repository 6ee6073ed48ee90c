// The dashboard's pure parts: escaping by construction, SQL with outside input only as
// parameters, the month-end projection and its range.
import { describe, expect, it } from 'vitest'
import { escapeHtml, html } from '../../services/dashboard/html.ts'
import { alertQuery, breakdownQuery, deliveriesQuery, deploymentsQuery, projectMonthEnd, teamMonthQuery } from '../../services/dashboard/queries.ts'
import { bucketsQuery, chartSpan } from '../../services/notifier/chart-data.ts'

describe('dashboard html', () => {
  it('escapes every interpolated value, keeps nested fragments and arrays of them', () => {
    const name = `<img src=x onerror="alert(1)">'&`
    const out = html`<td title="${name}">${name}</td>${[1, 2].map((n) => html`<i>${n}</i>`)}${null}${false}`.value
    expect(out).toBe(`<td title="${escapeHtml(name)}">&lt;img src=x onerror=&quot;alert(1)&quot;&gt;&#39;&amp;</td><i>1</i><i>2</i>`)
    expect(out).not.toContain('<img')
  })
})

describe('dashboard queries', () => {
  const hostile = "x' OR 1=1; DROP TABLE alerts --"
  it('carry outside input as query parameters, never in the SQL text', () => {
    for (const q of [alertQuery(hostile), deliveriesQuery(hostile), deploymentsQuery([hostile]), teamMonthQuery(0, [hostile])]) {
      expect(q.query).not.toContain(hostile)
      expect(JSON.stringify(q.query_params)).toContain(JSON.stringify(hostile).slice(1, -1))
    }
    const b = bucketsQuery({ team: hostile, endpoint: hostile, model: null }, chartSpan({ started_at: '2026-11-22T10:00:00.000Z', detected_at: '2026-11-22T10:10:00.000Z' }))
    expect(b.query).not.toContain(hostile)
    expect(b.query_params).toMatchObject({ team: hostile, endpoint: hostile, any_endpoint: false, any_model: true })
    expect(breakdownQuery('endpoint', Date.parse('2026-11-22T10:00:00Z')).query_params).toMatchObject({ now: '2026-11-22 10:00:00' })
  })
})

describe('month-end projection', () => {
  const now = Date.parse('2026-11-21T00:00:00Z') // 10 days left in November
  it('adds the remaining days at the mean daily spend, with an 80% range from the day-to-day spread', () => {
    const p = projectMonthEnd(now, 1000, 0, [100, 120, 80, 100])
    expect(p.usd).toBeCloseTo(1000 + 10 * 100, 6)
    expect(p.low).toBeLessThan(p.usd)
    expect(p.high).toBeGreaterThan(p.usd)
    expect(p.high - p.usd).toBeCloseTo(1.2816 * Math.sqrt(((0 + 400 + 400 + 0) / 3) * 10), 6)
    expect(p.basis).toContain('last 4 full days')
  })
  it('with under 3 days of history: the pace of the last 24 h, ±25%, and it says so; never below month to date', () => {
    const p = projectMonthEnd(now, 50, 10, [])
    expect(p).toMatchObject({ usd: 150, low: 125, high: 175 })
    expect(p.basis).toContain('under 3 full days')
    expect(projectMonthEnd(now, 1000, 0, [0, 0, 500]).low).toBeGreaterThanOrEqual(1000)
  })
})
