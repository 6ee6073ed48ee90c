// ISO weeks in a team's time zone, when a digest is due, and the month-end forecast range.
import { describe, expect, it } from 'vitest'
import { dueWeek, parseWeek, previousWeek, weekAt } from '../../services/digest/week.ts'
import { forecastMonth } from '../../services/digest/build.ts'
import { ValidationError } from '../../shared/errors.ts'

const iso = (ms: number) => new Date(ms).toISOString()

describe('ISO weeks in a time zone', () => {
  it('maps YYYY-Www to Monday 00:00 local, across DST and year ends', () => {
    const w = parseWeek('2026-W48', 'Europe/Berlin')
    expect([iso(w.from), iso(w.to)]).toEqual(['2026-11-22T23:00:00.000Z', '2026-11-29T23:00:00.000Z'])
    expect(parseWeek('2026-W48', 'UTC').from).toBe(Date.UTC(2026, 10, 23))
    // the week of the spring DST change in Berlin has 167 hours
    const dst = parseWeek('2026-W13', 'Europe/Berlin')
    expect((dst.to - dst.from) / 3_600_000).toBe(167)
    // 2026 has 53 ISO weeks, 2025 has 52; week 1 of 2026 starts in 2025
    expect(iso(parseWeek('2026-W53', 'UTC').from)).toBe('2026-12-28T00:00:00.000Z')
    expect(iso(parseWeek('2026-W01', 'UTC').from)).toBe('2025-12-29T00:00:00.000Z')
    expect(() => parseWeek('2025-W53', 'UTC')).toThrow(/2025 has no week 53/)
    expect(() => parseWeek('2026-48', 'UTC')).toThrow(ValidationError)
    expect(() => parseWeek('2026-W00', 'UTC')).toThrow(/--week must be an ISO week as YYYY-Www, e\.g\. --week 2026-W48/)
    expect(previousWeek(w).id).toBe('2026-W47')
    expect(weekAt(Date.UTC(2026, 10, 22, 23, 30), 'Europe/Berlin').id).toBe('2026-W48')
    expect(weekAt(Date.UTC(2026, 10, 22, 23, 30), 'UTC').id).toBe('2026-W47')
  })

  it('is due for the previous week once the local send day and time have passed', () => {
    const sched = { day: 'monday' as const, time: '09:00', timezone: 'America/New_York' }
    expect(dueWeek(Date.UTC(2026, 10, 23, 13, 59), sched)).toBeNull() // 08:59 in New York
    expect(dueWeek(Date.UTC(2026, 10, 23, 14, 0), sched)?.id).toBe('2026-W47')
    expect(dueWeek(Date.UTC(2026, 10, 28, 12), sched)?.id).toBe('2026-W47')
    expect(dueWeek(Date.UTC(2026, 10, 23, 14), { ...sched, day: 'friday' })).toBeNull()
  })
})

describe('month-end forecast', () => {
  it('projects the daily mean with a range from the day-to-day spread', () => {
    const flat = forecastMonth([10, 10, 10, 10], 4, 30, 40)
    expect(flat).toEqual({ forecast: 300, low: 300, high: 300 })
    const noisy = forecastMonth([0, 20, 0, 20], 4, 30, 40)
    expect(noisy.forecast).toBe(300)
    expect(noisy.low).toBeLessThan(300)
    expect(noisy.high).toBeGreaterThan(300)
    expect(noisy.low).toBeGreaterThanOrEqual(40)
    // at the month's end nothing remains to forecast
    expect(forecastMonth([5, 5], 30, 30, 150)).toEqual({ forecast: 150, low: 150, high: 150 })
  })
})
