/**
 * One-sided CUSUM of the log-likelihood ratio of "relative shift = threshold" against
 * "relative shift = INDIFFERENCE_LOW × threshold", for a Gaussian estimate `rel` (the window's
 * relative deviation from baseline) with standard error `se`. Per-window evidence is capped so
 * one window cannot cross the decision threshold.
 */
import { INDIFFERENCE_LOW, LLR_CAP_FRACTION, LLR_THRESHOLD } from './params.ts'

export interface Cusum {
  s: number
  /** start (ms) of the current run of positive evidence */
  start: number
  /** windows in the current run */
  windows: number
}

export function newCusum(): Cusum {
  return { s: 0, start: 0, windows: 0 }
}

export function resetCusum(c: Cusum): void {
  c.s = 0
  c.start = 0
  c.windows = 0
}

/** Log-likelihood ratio of one observation; sign = +1 tests upward shifts, -1 downward. */
export function llr(rel: number, se: number, threshold: number, sign: 1 | -1): number {
  const hi = threshold
  const lo = threshold * INDIFFERENCE_LOW
  const v = se * se
  const raw = ((hi - lo) * (sign * rel - (hi + lo) / 2)) / v
  const cap = LLR_THRESHOLD * LLR_CAP_FRACTION
  return raw > cap ? cap : raw < -LLR_THRESHOLD ? -LLR_THRESHOLD : raw
}

/** Adds one window of evidence at time t; returns true when the statistic crosses the threshold. */
export function stepCusum(c: Cusum, t: number, evidence: number): boolean {
  const next = c.s + evidence
  if (next <= 0) {
    resetCusum(c)
    return false
  }
  if (c.s === 0) {
    c.start = t
    c.windows = 0
  }
  // capped so that evidence drains within a few windows once the shift is over
  c.s = Math.min(next, 2 * LLR_THRESHOLD)
  c.windows++
  return c.s >= LLR_THRESHOLD
}
