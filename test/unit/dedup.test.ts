import { describe, expect, it } from 'vitest'
import { createDeduper } from '../../services/aggregator/dedup.ts'

describe('deduper', () => {
  it('remembers an id for at least the horizon of event time, per partition', () => {
    const d = createDeduper(60_000)
    d.add('p0', 'a', 0)
    expect(d.has('p0', 'a')).toBe(true)
    expect(d.has('p1', 'a')).toBe(false)
    d.add('p0', 'b', 59_999)
    expect(d.has('p0', 'a')).toBe(true)
    d.add('p0', 'c', 60_000) // new generation; 'a' is still remembered
    expect(d.has('p0', 'a')).toBe(true)
    d.add('p0', 'd', 120_000) // a is now more than two horizons old
    expect(d.has('p0', 'a')).toBe(false)
    expect(d.has('p0', 'c')).toBe(true)
  })
  it('forgets everything after a jump of two horizons', () => {
    const d = createDeduper(1000)
    d.add('p', 'x', 0)
    d.add('p', 'y', 5000)
    expect(d.has('p', 'x')).toBe(false)
    expect(d.size()).toBe(1)
  })
})
