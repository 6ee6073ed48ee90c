import { describe, expect, it } from 'vitest'
import { createDeduper, createFingerprintDeduper, idFingerprint } from '../../services/aggregator/dedup.ts'

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
    let seed = 3
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31)
    let ts = 0
    let dups = 0
    for (let i = 0; i < 5000; i++) {
      ts += Math.floor(rnd() * 40)
      const p = `p${Math.floor(rnd() * 3)}`
      const id = `id-${Math.floor(rnd() * 400)}`
      const fresh = !a.has(p, id)
      if (fresh) a.add(p, id, ts)
      else dups++
      expect(b.addIfNew(p, id, ts)).toBe(fresh)
    }
    expect(dups).toBeGreaterThan(100)
    expect(b.size()).toBe(a.size())
  })
  it('the fingerprint deduper agrees with the Deduper, also when every fingerprint collides', () => {
    for (const fp of [idFingerprint, (_id: string) => 7]) {
      const a = createDeduper(1000)
      const b = createFingerprintDeduper(1000)
      let seed = 5
      const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31
      let ts = 0
      for (let i = 0; i < 3000; i++) {
        ts += Math.floor(rnd() * 40)
        const p = `p${Math.floor(rnd() * 2)}`
        const id = `id-${Math.floor(rnd() * 300)}`
        expect(b.addIfNew(p, fp(id), id, ts)).toBe(a.addIfNew(p, id, ts))
      }
      expect(b.size()).toBe(a.size())
    }
    expect(idFingerprint('evt-1')).not.toBe(idFingerprint('evt-2'))
    expect(idFingerprint('x'.repeat(500))).toBeLessThan(2 ** 30)
  })
})
