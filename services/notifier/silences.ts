/**
 * Silences: "don't page team T (endpoint E, model M) until TIME, because R". Stored in the
 * ClickHouse table `silences` (migration 005) so every notifier replica and the CLI see them.
 * A silenced alert state change is recorded in alert_deliveries with outcome 'silenced'.
 *
 * CLI: `burnwatch silence --team T [--endpoint E] [--model M] --until TIME --reason R` →
 * `addSilence(client, { team, endpoint, model, until: parseUntil(TIME), reason })`;
 * `burnwatch silences` → `listSilences(client)` and `formatSilences(list)`.
 */
import { randomUUID } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
import { parseDuration } from '../../shared/config.ts'
import { ValidationError } from '../../shared/errors.ts'

export interface Silence {
  silence_id: string
  team: string
  /** null = every endpoint of the team */
  endpoint: string | null
  /** null = every model */
  model: string | null
  /** ISO-8601 UTC */
  until: string
  reason: string
  created_by: string
  /** ISO-8601 UTC */
  created_at: string
}

export interface SilenceInput {
  team: string
  endpoint?: string | null
  model?: string | null
  /** a Date, an ISO-8601 time, or a duration from now (`2h`, `30m`, `1d`) */
  until: Date | string
  reason: string
  createdBy?: string
}

/** `2h` (from now), or an ISO-8601 date-time; throws a ValidationError saying what is accepted. */
export function parseUntil(value: Date | string, nowMs: number = Date.now()): Date {
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) throw new ValidationError('--until is not a valid date')
    return value
  }
  const ms = parseDuration(value)
  if (ms !== null) return new Date(nowMs + ms)
  if (/^\d{4}-\d{2}-\d{2}/.test(value.trim())) {
    const t = Date.parse(value.trim())
    if (!Number.isNaN(t)) return new Date(t)
  }
  throw new ValidationError(`--until must be a duration from now such as 2h, 30m, 1d, or an ISO-8601 time such as 2026-11-23T09:00:00Z (got ${JSON.stringify(value)})`)
}

/** Adds a silence; every problem with the input is listed at once. */
export async function addSilence(client: ClickHouseClient, input: SilenceInput, opts: { now?: () => number } = {}): Promise<Silence> {
  const now = opts.now?.() ?? Date.now()
  const problems: string[] = []
  const team = input.team?.trim() ?? ''
  if (!team) problems.push('--team is required: the team whose alerts are silenced')
  const reason = input.reason?.trim() ?? ''
  if (!reason) problems.push('--reason is required: say why, so the next person on call knows')
  let until: Date | null = null
  try {
    until = parseUntil(input.until, now)
    if (until.getTime() <= now) problems.push(`--until ${until.toISOString()} is in the past; give a later time or a duration such as 2h`)
  } catch (err) {
    problems.push((err as Error).message)
  }
  const endpoint = input.endpoint?.length ? input.endpoint : null
  const model = input.model?.length ? input.model : null
  if (problems.length || !until) throw new ValidationError(`Cannot add the silence:\n${problems.map((p) => `  - ${p}`).join('\n')}`)
  const s: Silence = {
    silence_id: randomUUID(),
    team,
    endpoint,
    model,
    until: until.toISOString(),
    reason,
    created_by: input.createdBy ?? '',
    created_at: new Date(now).toISOString(),
  }
  await client.insert({ table: 'silences', values: [s], format: 'JSONEachRow' })
  return s
}

interface SilenceRow {
  silence_id: string
  team: string
  endpoint: string | null
  model: string | null
  until_ms: number | string
  reason: string
  created_by: string
  created_ms: number | string
}

/** Silences still in force at `activeAt` (default now), or every silence with `all: true`; soonest to end first. */
export async function listSilences(client: ClickHouseClient, opts: { activeAt?: number; all?: boolean; team?: string } = {}): Promise<Silence[]> {
  const rs = await client.query({
    query: `SELECT silence_id, team, endpoint, model, toUnixTimestamp64Milli(until) AS until_ms, reason, created_by, toUnixTimestamp64Milli(created_at) AS created_ms
            FROM silences FINAL
            WHERE ({all:UInt8} = 1 OR until > fromUnixTimestamp64Milli({at:Int64}, 'UTC'))
              AND ({team:String} = '' OR team = {team:String})
            ORDER BY until, team, silence_id`,
    query_params: { all: opts.all ? 1 : 0, at: opts.activeAt ?? Date.now(), team: opts.team ?? '' },
    format: 'JSONEachRow',
  })
  const rows = await rs.json<SilenceRow>()
  return rows.map((r) => ({
    silence_id: r.silence_id,
    team: r.team,
    endpoint: r.endpoint,
    model: r.model,
    until: new Date(Number(r.until_ms)).toISOString(),
    reason: r.reason,
    created_by: r.created_by,
    created_at: new Date(Number(r.created_ms)).toISOString(),
  }))
}

/** Does the silence cover this alert at `nowMs`? A team-total alert is covered only by a team-wide silence. */
export function silenceMatches(s: Pick<Silence, 'team' | 'endpoint' | 'model' | 'until'>, a: { team: string; endpoint: string | null; model: string | null }, nowMs: number): boolean {
  if (Date.parse(s.until) <= nowMs) return false
  if (s.team !== a.team) return false
  if (s.endpoint !== null && s.endpoint !== a.endpoint) return false
  if (s.model !== null && s.model !== a.model) return false
  return true
}

/** A table for `burnwatch silences`. */
export function formatSilences(list: readonly Silence[]): string {
  if (!list.length) return 'No active silences.'
  const rows = list.map((s) => [s.team, s.endpoint ?? '*', s.model ?? '*', s.until, s.reason, s.silence_id])
  const head = ['TEAM', 'ENDPOINT', 'MODEL', 'UNTIL', 'REASON', 'ID']
  const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...rows.map((r) => r[i]!.length))))
  const line = (r: string[]) => r.map((c, i) => (c.length > widths[i]! ? c.slice(0, widths[i]! - 1) + '…' : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [line(head), ...rows.map(line)].join('\n')
}
