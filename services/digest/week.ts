/**
 * ISO weeks in a team's time zone (date-fns with @date-fns/tz): `2026-W48` ↔ the UTC instants of
 * its Monday 00:00 and the next Monday 00:00 in that zone, and when a week's digest is due.
 */
import { addWeeks, getISODay, getISOWeek, getISOWeekYear, setISOWeek, startOfISOWeek, subWeeks } from 'date-fns'
import { TZDate } from '@date-fns/tz'
import { ValidationError } from '../../shared/errors.ts'
import { WEEKDAYS } from '../../shared/config.ts'

export interface Week {
  /** `YYYY-Www` */
  id: string
  /** inclusive, UTC ms: Monday 00:00 in the zone */
  from: number
  /** exclusive, UTC ms: the next Monday 00:00 in the zone */
  to: number
  timezone: string
}

const id = (d: Date) => `${getISOWeekYear(d)}-W${String(getISOWeek(d)).padStart(2, '0')}`

function weekOf(monday: Date, timezone: string): Week {
  // in the zone, so ISO week numbers and the next Monday (across a DST change) are the zone's
  const start = new TZDate(monday.getTime(), timezone)
  return { id: id(start), from: start.getTime(), to: addWeeks(start, 1).getTime(), timezone }
}

/** `YYYY-Www` in the zone; a clear error when it is not an ISO week. */
export function parseWeek(week: string, timezone: string): Week {
  const m = /^(\d{4})-W(\d{2})$/.exec(week)
  const n = m ? Number(m[2]) : 0
  if (!m || n < 1 || n > 53) throw new ValidationError(`--week must be an ISO week as YYYY-Www, e.g. --week 2026-W48 (got '${week.slice(0, 40)}')`)
  // 4 January is always in week 1 of its ISO year
  const start = startOfISOWeek(setISOWeek(new TZDate(Number(m[1]), 0, 4, 12, 0, 0, timezone), n))
  const w = weekOf(start, timezone)
  if (w.id !== week) throw new ValidationError(`--week ${week}: ${m[1]} has no week ${n} (its last ISO week is ${m[1]}-W52)`)
  return w
}

/** The week containing `nowMs` in the zone. */
export function weekAt(nowMs: number, timezone: string): Week {
  return weekOf(startOfISOWeek(new TZDate(nowMs, timezone)), timezone)
}

export function previousWeek(w: Week): Week {
  return weekOf(subWeeks(new TZDate(w.from, w.timezone), 1), w.timezone)
}

/**
 * The week whose digest is due at `nowMs`: the previous week, once this week's send day and local
 * time (e.g. Monday 09:00) have passed; null before that.
 */
export function dueWeek(nowMs: number, schedule: { day: (typeof WEEKDAYS)[number]; time: string; timezone: string }): Week | null {
  const now = new TZDate(nowMs, schedule.timezone)
  const [hh, mm] = schedule.time.split(':').map(Number) as [number, number]
  const day = WEEKDAYS.indexOf(schedule.day) + 1
  const today = getISODay(now)
  const minutes = now.getHours() * 60 + now.getMinutes()
  if (today < day || (today === day && minutes < hh * 60 + mm)) return null
  return previousWeek(weekAt(nowMs, schedule.timezone))
}
