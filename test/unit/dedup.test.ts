import { describe, expect, it } from 'vitest'
import { createDeduper, idFingerprint } from '../../services/aggregator/dedup.ts'
import { mulberry32 } from '../../services/demo/traffic.ts'

/** A random stream of (partition, id, event time) with repeated IDs. */
function* stream(seed: number, n: number, o: { maxStep: number; partitions: number; ids: number }) {
  const rnd = mulberry32(seed)
  let ts = 0
  for (let i = 0; i < n; i++) {
    ts += Math.floor(rnd() * o.maxStep)
    yield { p: `p${Math.floor(rnd() * o.partitions)}`, id: `id-${Math.floor(rnd() * o.ids)}`, ts }
  }
}

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
  it('addIfNew agrees with has-then-add on a random stream', () => {
    const a = createDeduper(1000)
    const b = createDeduper(1000)
    let dups = 0
    for (const { p, id, ts } of stream(3, 5000, { maxStep: 40, partitions: 3, ids: 400 })) {
      const fresh = !a.has(p, id)
      if (fresh) a.add(p, id, ts)
      else dups++
      expect(b.addIfNew(p, id, ts)).toBe(fresh)
    }
    expect(dups).toBeGreaterThan(100)
    expect(b.size()).toBe(a.size())
  })
  it('a reference Set-based deduper and this one agree, also when every fingerprint collides', () => {
    // the semantics of the module's doc comment, written with Sets
    const reference = (horizon: number) => {
      const parts = new Map<string, { cur: Set<string>; prev: Set<string>; end: number }>()
      return (p: string, id: string, ts: number) => {
        let s = parts.get(p)
        if (!s) parts.set(p, (s = { cur: new Set(), prev: new Set(), end: ts + horizon }))
        if (s.cur.has(id) || s.prev.has(id)) return false
        if (ts >= s.end) {
          s.prev = ts >= s.end + horizon ? new Set() : s.cur
          s.cur = new Set()
          s.end = ts + horizon
        }
        s.cur.add(id)
        return true
      }
    }
    // a short horizon (generations roll) and a long one (the tables grow to thousands of IDs)
    for (const [fp, horizon] of [[undefined, 1000], [7, 1000], [undefined, 1e9]] as const) {
      const a = reference(horizon)
      const b = createDeduper(horizon)
      let dups = 0
      for (const { p, id, ts } of stream(5, 20_000, { maxStep: 10, partitions: 2, ids: 3000 })) {
        const fresh = a(p, id, ts)
        if (!fresh) dups++
        expect(b.addIfNew(p, id, ts, fp)).toBe(fresh)
      }
      expect(dups).toBeGreaterThan(1000)
    }
    expect(idFingerprint('evt-1')).not.toBe(idFingerprint('evt-2'))
    expect(idFingerprint('x'.repeat(500))).toBeLessThan(2 ** 30)
  })
})
