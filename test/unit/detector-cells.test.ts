/**
 * Cold endpoint cells (services/detector/core/cells.ts, snapshot.ts): the detector core that
 * keeps only a few endpoints' state in memory, the others as bytes in a cell store, must give
 * exactly the alerts of the core that keeps everything in memory.
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import type { AlertRecord } from '../../schemas/alert.ts'
import { createDetectorCore, createMemoryCellStore, defaultDetectorConfig, type CellStore, type DetectorConfig } from '../../services/detector/core/index.ts'
import { BufferPool, freeOwnedBytes, newCellHandle, SpaceAllocator } from '../../services/detector/core/cells.ts'
import { decodeSnapshot, encodeSnapshot, snapshotShapeCount } from '../../services/detector/core/snapshot.ts'
import { ENDPOINT_MAX_SKEW_WINDOWS } from '../../services/detector/core/params.ts'
import { createFileCellStore } from '../../services/detector/file-cell-store.ts'
import { REBUILD_CHUNK_WINDOWS } from '../../services/detector/clickhouse-store.ts'
import { loadTokens } from '../../eval/dataset.ts'
import { newCursor, windowsAt } from '../../eval/generate.ts'
import { Rng } from '../../eval/rng.ts'
import { buildScenarios, START } from '../../eval/scenarios.ts'

const M = 60_000
const H = 60 * M
/** fed from hour 28 to hour 44 of the eval's time line: a few hours of baseline, then the labelled events */
const FROM = START + 28 * H
const TO = START + 44 * H

/** The eval's scenarios whose labelled event falls between hours 31 and 36 (steps, model swaps, a retry storm, a cache regression, a rollback, a shared series, late events, ...), fed minute by minute. */
function run(config: DetectorConfig): { alerts: AlertRecord[]; core: ReturnType<typeof createDetectorCore> } {
  const seed = 20260105
  const specs = buildScenarios(seed, loadTokens('code'), loadTokens('conv')).filter((s) => s.t0 >= START + 31 * H && s.t0 < START + 36 * H)
  const core = createDetectorCore({ ...config, teams: [...new Set(specs.map((s) => s.team))].map((name) => ({ name, monthlyBudgetUsd: 1e6 })) })
  const rng = new Rng(seed)
  const cursors = specs.map((s, i) => newCursor(s, seed ^ (0x51ed + i)))
  const markers = specs.flatMap((s) => s.services.flatMap((v) => v.deploys.filter((d) => d.marker).map((d) => ({ team: s.team, endpoint: s.endpoint, service: v.name, id: d.id, t: d.t })))).sort((a, b) => a.t - b.t)
  let mi = 0
  const alerts: AlertRecord[] = []
  for (let t = FROM; t < TO; t += M) {
    while (mi < markers.length && markers[mi]!.t <= t) {
      const m = markers[mi++]!
      core.onDeployment({ deployment_id: m.id, team: m.team, service: m.service, endpoint: m.endpoint, timestamp: new Date(m.t).toISOString() })
    }
    cursors.forEach((c, i) => {
      for (const w of windowsAt(c, t, rng)) {
        // every other scenario without deployment IDs in its windows: its pages name deployments from the team's markers alone
        if (i % 2 === 1) w.deployments = {}
        alerts.push(...core.onWindow(w))
      }
    })
  }
  alerts.push(...core.flush())
  return { alerts, core }
}

describe('detector core with cold endpoint cells', () => {
  const inMemory = run(defaultDetectorConfig)

  it('the scenarios page (so the comparison below means something)', () => {
    expect(inMemory.alerts.filter((a) => a.status === 'firing').length).toBeGreaterThan(5)
    expect(new Set(inMemory.alerts.map((a) => a.drivers.primary)).size).toBeGreaterThan(2)
    // endpoint rollups page too (a model swap), and deployments are named from markers alone
    expect(inMemory.alerts.some((a) => a.status === 'firing' && a.endpoint !== null && a.model === null)).toBe(true)
    expect(inMemory.alerts.filter((a) => a.status === 'firing' && a.deployment_ids.length > 0).length).toBeGreaterThan(5)
    expect(inMemory.core.cellStats()).toMatchObject({ cold: 0, reads: 0, writes: 0 })
  })

  it.each([
    ['memory', 3, () => createMemoryCellStore()],
    ['file', 1, () => createFileCellStore(mkdtempSync(join(tmpdir(), 'cells-test-')))],
  ] as [string, number, () => CellStore][])(
    'a %s store with %i endpoints in memory gives the same alerts, in the same order',
    (_kind, hot, store) => {
      const cold = run({ ...defaultDetectorConfig, cellStore: store(), hotEndpoints: hot })
      const s = cold.core.cellStats()
      expect(s.hot).toBeLessThanOrEqual(hot)
      expect(s.cold).toBeGreaterThan(5)
      expect(s.reads).toBeGreaterThan(10_000)
      expect(cold.alerts).toEqual(inMemory.alerts)
    },
    60_000,
  )
})

describe('snapshots', () => {
  class Inner {
    xs = new Float32Array([1.5, 2.5])
    bytes = new Uint8Array([7, 8, 9])
    ds = new Float64Array([0.1, 1e300])
    again: Float32Array
    constructor() {
      this.again = this.xs
    }
    sum(): number {
      return this.xs[0]! + this.xs[1]!
    }
  }
  class Outer {
    inner = new Inner()
    same: Inner
    byName = new Map<string, Inner>()
    shared: number[]
    minusZero = -0
    nan = NaN
    constructor(shared: number[]) {
      this.same = this.inner
      this.byName.set('a', this.inner)
      this.shared = shared
    }
  }

  it('restores prototypes, shared references, typed array views and external references', () => {
    const shared = [1, 2, 3]
    const o = new Outer(shared)
    const back = decodeSnapshot<Outer>(encodeSnapshot(o, [[o, 'shared']]).slice(), [shared])
    expect(back).toBeInstanceOf(Outer)
    expect(back.inner).toBeInstanceOf(Inner)
    expect(back.inner.sum()).toBe(4)
    expect(back.same).toBe(back.inner)
    expect(back.byName.get('a')).toBe(back.inner)
    expect(back.shared).toBe(shared)
    expect(o.shared).toBe(shared)
    back.inner.xs[1] = 10
    expect(back.inner.again[1]).toBe(10)
    // typed arrays of several element sizes, each aligned after the odd-length one
    expect([...back.inner.bytes]).toEqual([7, 8, 9])
    expect([...back.inner.ds]).toEqual([0.1, 1e300])
    expect(back.inner.ds.byteOffset % 8).toBe(0)
    expect(Object.is(back.minusZero, -0)).toBe(true)
    expect(back.nan).toBeNaN()
  })

  it('refuses state holding a function, naming where', () => {
    expect(() => encodeSnapshot({ f: () => 1 })).toThrow()
    expect(() => encodeSnapshot({ a: { b: [1, new Map([['k', { fn: () => 1 }]])] } })).toThrow(/cannot store a function at state\.a\.b\.\[\]\.get\(\)\.fn/)
    expect(() => encodeSnapshot({ d: new Date(0) })).toThrow(/Date at state\.d/)
    expect(() => encodeSnapshot({ v: new DataView(new ArrayBuffer(8)) })).toThrow(/DataView at state\.v/)
  })

  it('round-trips strings, Sets, a null prototype, a cycle and many keys', () => {
    const bag: Record<string, unknown> = Object.create(null)
    for (let i = 0; i < 40; i++) bag[`k${i}`] = i % 2 ? `v${i} ✓ ünïcode` : i * 1.5
    const root = { bag, set: new Set(['a', 'b']), big: 2 ** 40, neg: -7, u: undefined, n: null, t: true, self: null as unknown }
    root.self = root
    const back = decodeSnapshot<typeof root>(encodeSnapshot(root).slice())
    expect(Object.getPrototypeOf(back.bag)).toBeNull()
    expect(back.bag).toEqual(bag)
    expect([...back.set]).toEqual(['a', 'b'])
    expect(back.self).toBe(back)
    expect([back.big, back.neg, back.u, back.n, back.t]).toEqual([2 ** 40, -7, undefined, null, true])
    expect('u' in back).toBe(true)
  })

  it('objects keyed by data (deployments, models) are dictionaries: they make no shapes, and round-trip', () => {
    class Acc {
      deps: Record<string, number> = {}
      models: Record<string, { n: number; c: number }> = {}
    }
    const encodeOne = (i: number) => {
      const a = new Acc()
      a.deps[`search-svc-r${i}`] = i
      a.deps[`canary-${i}.2`] = 1
      a.models['gpt-4o'] = { n: i, c: 0.5 }
      return decodeSnapshot<Acc>(encodeSnapshot(a).slice())
    }
    encodeOne(0)
    const before = snapshotShapeCount()
    for (let i = 1; i < 300; i++) expect(encodeOne(i).deps).toEqual({ [`search-svc-r${i}`]: i, [`canary-${i}.2`]: 1 })
    expect(snapshotShapeCount()).toBe(before)
    const back = encodeOne(7)
    expect(back).toBeInstanceOf(Acc)
    expect(back.models['gpt-4o']).toEqual({ n: 7, c: 0.5 })
    // a key named __proto__ is data, not a prototype
    const tricky = JSON.parse('{"__proto__": {"polluted": 1}, "x": 2}') as Record<string, unknown>
    const t2 = decodeSnapshot<Record<string, unknown>>(encodeSnapshot({ tricky }).slice()).tricky as Record<string, unknown>
    expect(Object.getPrototypeOf(t2)).toBe(Object.prototype)
    expect(Object.keys(t2)).toEqual(['__proto__', 'x'])
    expect((t2 as { polluted?: number }).polluted).toBeUndefined()
  })

  it('the buffer pool keeps at most maxFree buffers and hands out the smallest that fits', () => {
    const pool = new BufferPool(2)
    const a = pool.take(10_000)
    const b = pool.take(40_000)
    const c = pool.take(20_000)
    expect(a.length).toBeGreaterThanOrEqual(10_000)
    pool.give(a)
    pool.give(b)
    pool.give(c) // full: c replaces the smaller a, whose bytes are freed at once
    expect(a.length).toBe(0)
    expect(pool.freeBytes()).toBe(b.length + c.length)
    expect(pool.take(15_000)).toBe(c)
    expect(pool.take(15_000)).toBe(b)
    expect(pool.take(15_000).length).toBeGreaterThanOrEqual(15_000)
    expect(pool.freeBytes()).toBe(0)
  })

  it("a dropped typed array's own bytes are freed now; a view of a larger buffer, or one on V8's heap, is left alone", () => {
    const own = new Float32Array(1000)
    freeOwnedBytes(own)
    expect(own.length).toBe(0)
    expect(own.buffer.byteLength).toBe(0)
    const cell = new Uint8Array(8192)
    const view = new Float64Array(cell.buffer, 1024, 100)
    freeOwnedBytes(view)
    expect(view.length).toBe(100)
    expect(cell.length).toBe(8192)
    const small = new Float64Array(8) // 64 bytes: V8 keeps these on its heap
    small[3] = 7
    freeOwnedBytes(small)
    expect(small[3]).toBe(7)
    freeOwnedBytes(own) // twice: no error
  })

  it('space is reused in place when it fits, and by class when freed', () => {
    const s = new SpaceAllocator()
    const a = newCellHandle()
    s.alloc(1500, a)
    expect(a).toEqual({ off: 0, cap: 2048, len: 1500 })
    s.alloc(2000, a)
    expect(a).toEqual({ off: 0, cap: 2048, len: 2000 })
    s.alloc(3000, a) // outgrows its space: moves, and frees offset 0
    expect(a).toEqual({ off: 2048, cap: 4096, len: 3000 })
    const b = newCellHandle()
    s.alloc(1800, b)
    expect(b.off).toBe(0)
    s.release(b)
    expect(b.cap).toBe(0)
    expect(s.live.has(b)).toBe(false)
    s.alloc(1700, b) // the freed space of its class is taken again: the store does not grow
    expect(b).toEqual({ off: 0, cap: 2048, len: 1700 })
    expect(s.live.has(b)).toBe(true)
    expect(s.size).toBe(2048 + 4096)
  })

  it('a file store compacts the space cells outgrew, and every cell reads back as written', () => {
    const store = createFileCellStore(mkdtempSync(join(tmpdir(), 'cells-compact-')), { compactSlackBytes: 0 })
    const cells = Array.from({ length: 200 }, (_, i) => ({ h: newCellHandle(), b: new Uint8Array(0), i }))
    // cells growing in step, as rings fill (1 KB → 64 KB each): without compaction the file would hold the outgrown space too
    let outgrown = 0
    for (let size = 1000; size <= 64_000; size *= 2) {
      for (const c of cells) {
        outgrown += c.h.cap
        c.b = new Uint8Array(size).fill((c.i + size) % 251)
        store.put(c.b, c.h)
      }
    }
    const live = cells.reduce((s, c) => s + c.h.cap, 0)
    expect(outgrown).toBeGreaterThan(live * 0.9)
    expect(store.size()).toBeLessThanOrEqual(live * 1.25 + 64_000 * 1.125)
    for (const c of cells) {
      const into = new Uint8Array(c.b.length)
      store.get(c.h, into)
      expect(Buffer.compare(into, c.b)).toBe(0)
    }
    store.close()
  })

  it("the rebuild's slices keep endpoints within the core's skew bound", () => {
    expect(REBUILD_CHUNK_WINDOWS).toBeLessThan(ENDPOINT_MAX_SKEW_WINDOWS)
  })
})
