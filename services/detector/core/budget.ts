/**
 * Monthly budget burn alerts for a team, as SRE multi-window error-budget alerts: the even-spend
 * rate is budget / 730 h; "fast burn" = the last 1 h AND the last 5 min both spend at >= 14.4×
 * that rate (2% of the month's budget in an hour) → critical; "slow burn" = the last 6 h AND the
 * last 30 min both at >= 6× → warning. Resolved once neither holds for `resolveWindows` minutes.
 */
import type { AlertRecord } from '../../../schemas/alert.ts'
import { alertId } from './hash.ts'
import { HOURS_PER_MONTH } from './params.ts'
import { toIso } from './time.ts'

const HOUR_MS = 3_600_000
export const FAST = { longMs: HOUR_MS, shortMs: 5 * 60_000, factor: 14.4 }
export const SLOW = { longMs: 6 * HOUR_MS, shortMs: 30 * 60_000, factor: 6 }

interface Open {
  id: string
  startedAt: number
  severity: 'warning' | 'critical'
  okStreak: number
}

export class BudgetTracker {
  private readonly team: string
  private readonly windowMs: number
  private readonly evenPerWindow: number
  private readonly lens: { fl: number; fs: number; sl: number; ss: number }
  private readonly buf: Float64Array
  private count = 0
  private readonly sums = { fl: 0, fs: 0, sl: 0, ss: 0 }
  private open: Open | null = null

  constructor(team: string, monthlyBudgetUsd: number, windowMs: number) {
    this.team = team
    this.windowMs = windowMs
    this.evenPerWindow = monthlyBudgetUsd / ((HOURS_PER_MONTH * HOUR_MS) / windowMs)
    const w = (ms: number): number => Math.max(1, Math.round(ms / windowMs))
    this.lens = { fl: w(FAST.longMs), fs: w(FAST.shortMs), sl: w(SLOW.longMs), ss: w(SLOW.shortMs) }
    this.buf = new Float64Array(this.lens.sl)
  }

  private at(back: number): number {
    // cost `back` windows before the newest (0 = newest)
    return this.buf[(this.count - 1 - back) % this.buf.length] ?? 0
  }

  /** One finalized team window (zero-cost windows included, in order). */
  step(t: number, cost: number, resolveWindows: number, deploymentIds: (startedAt: number) => string[]): AlertRecord | null {
    const L = this.lens
    for (const name of ['fl', 'fs', 'sl', 'ss'] as const) {
      const len = L[name]
      this.sums[name] += cost - (this.count >= len ? this.at(len - 1) : 0)
    }
    this.buf[this.count % this.buf.length] = cost
    this.count++
    const rate = (name: 'fl' | 'fs' | 'sl' | 'ss'): number => this.sums[name] / L[name] / this.evenPerWindow
    const fast = rate('fl') >= FAST.factor && rate('fs') >= FAST.factor
    const slow = rate('sl') >= SLOW.factor && rate('ss') >= SLOW.factor
    const severity = fast ? 'critical' : slow ? 'warning' : null
    const detectedAt = t + this.windowMs
    if (!this.open) {
      if (!severity) return null
      const factor = fast ? FAST.factor : SLOW.factor
      const startedAt = this.burnStart(t, factor, fast ? L.fl : L.sl)
      this.open = { id: alertId(this.team, null, null, 'budget_burn', startedAt), startedAt, severity, okStreak: 0 }
      return this.record('firing', fast ? 'fl' : 'sl', detectedAt, deploymentIds(startedAt))
    }
    const o = this.open
    if (!severity) {
      o.okStreak++
      if (o.okStreak >= resolveWindows) {
        this.open = null
        return this.record('resolved', 'sl', detectedAt, deploymentIds(o.startedAt), o)
      }
      return null
    }
    o.okStreak = 0
    if (severity === 'critical' && o.severity === 'warning') {
      o.severity = 'critical'
      return this.record('updated', 'fl', detectedAt, deploymentIds(o.startedAt))
    }
    return null
  }

  /** Start of the longest trailing span (within the long window) spending at >= factor × even rate. */
  private burnStart(t: number, factor: number, maxBack: number): number {
    let sum = 0
    let best = 0
    const n = Math.min(maxBack, this.count)
    for (let b = 0; b < n; b++) {
      sum += this.at(b)
      if (sum / (b + 1) >= factor * this.evenPerWindow) best = b
    }
    return t - best * this.windowMs
  }

  private record(status: AlertRecord['status'], span: 'fl' | 'sl', detectedAt: number, deploymentIds: string[], o: Open | null = this.open): AlertRecord {
    const perHour = HOUR_MS / this.windowMs
    const baseline = this.evenPerWindow * perHour
    const current = (this.sums[span] / this.lens[span]) * perHour
    const open = o as Open
    return {
      alert_id: open.id,
      status,
      team: this.team,
      endpoint: null,
      model: null,
      signal: 'budget_burn',
      direction: 'up',
      baseline: Number(baseline.toPrecision(6)),
      current: Number(current.toPrecision(6)),
      change_pct: Math.round((current / baseline - 1) * 10000) / 100,
      started_at: toIso(open.startedAt),
      detected_at: toIso(detectedAt),
      deployment_ids: deploymentIds,
      drivers: { input_tokens_per_request: 0, output_tokens_per_request: 0, cache_reads: 0, price: 0, error_share: 0, primary: 'volume' },
      severity: open.severity,
      monthly_impact_usd: Math.round((current - baseline) * HOURS_PER_MONTH * 100) / 100,
    }
  }
}
