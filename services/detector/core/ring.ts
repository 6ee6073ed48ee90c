import type { WindowTotals } from './baseline.ts'
import { freeOwnedBytes } from './cells.ts'

/**
 * Bounded ring of the most recent windows of one key, in typed arrays (cheap per window, no
 * per-window allocation kept). Index 0 is the oldest window kept, size-1 the newest.
 */
export const COLS = {
  t: 0, // window start, ms
  n: 1, // requests
  c: 2, // cost USD
  q: 3, // sum of squared per-request cost
  i: 4, // input tokens
  o: 5, // output tokens
  k: 6, // cache read tokens
  e: 7, // errors
  xc: 8, // expected cost at the cost-per-request baseline (n × baseline unit cost)
  xv: 9, // variance of the cost under the baseline
  bc: 10, // expected cost at the burn-rate baseline
  bv: 11, // variance of the cost under the burn-rate baseline
  bt: 12, // relative tolerance of the burn-rate baseline at that time (threshold × widening)
  kw: 13, // cache write tokens
  cu: 14, // cost of uncached input tokens (the window's cost_input_usd; 0 when not carried)
  cr: 15, // cost of cache reads
  cw: 16, // cost of cache writes
  co: 17, // cost of output tokens
  r: 18, // retries (the window's retries; 0 when not carried)
} as const
export type Col = (typeof COLS)[keyof typeof COLS]
export const NCOLS = Object.keys(COLS).length

/**
 * Per-window maps of a few names to numbers (deployment IDs → requests; models → requests and
 * cost), stored compactly: the names in a small table, each window holding up to `k` (slot,
 * values) pairs in typed arrays (k grows on demand, 1 for a key that only ever sees one name).
 * A name the table has no room for (every slot still referenced by a window in the ring) is
 * dropped from that window: the maps feed attribution and model-mix shares, read only when an
 * alert is built. Decoded on demand.
 */
class SlotMaps {
  private capacity: number
  private readonly values: number
  private names: string[] = []
  private k = 0
  /** slot + 1 per (window, pair); 0 = empty */
  private slots: Uint8Array = new Uint8Array(0)
  private vals: Float32Array = new Float32Array(0)
  private static readonly MAX_NAMES = 32
  private static readonly MAX_PAIRS = 8

  constructor(capacity: number, values: number) {
    this.capacity = capacity
    this.values = values
  }

  /** More windows (the ring grew; its windows keep their slots). */
  resize(capacity: number): void {
    const slots = new Uint8Array(capacity * this.k)
    const vals = new Float32Array(capacity * this.k * this.values)
    slots.set(this.slots)
    vals.set(this.vals)
    freeOwnedBytes(this.slots)
    freeOwnedBytes(this.vals)
    this.slots = slots
    this.vals = vals
    this.capacity = capacity
  }

  private grow(k: number): void {
    const slots = new Uint8Array(this.capacity * k)
    const vals = new Float32Array(this.capacity * k * this.values)
    for (let w = 0; w < this.capacity; w++) {
      for (let j = 0; j < this.k; j++) {
        slots[w * k + j] = this.slots[w * this.k + j] ?? 0
        for (let v = 0; v < this.values; v++) vals[(w * k + j) * this.values + v] = this.vals[(w * this.k + j) * this.values + v] ?? 0
      }
    }
    freeOwnedBytes(this.slots)
    freeOwnedBytes(this.vals)
    this.slots = slots
    this.vals = vals
    this.k = k
  }

  private slotOf(name: string, writing: number): number {
    const i = this.names.indexOf(name)
    if (i >= 0) return i
    if (this.names.length < SlotMaps.MAX_NAMES) {
      this.names.push(name)
      return this.names.length - 1
    }
    // reuse a name no window (but the one being written) still refers to
    const used = new Uint8Array(this.names.length)
    for (let w = 0; w < this.capacity; w++) {
      if (w === writing) continue
      for (let j = 0; j < this.k; j++) {
        const s = this.slots[w * this.k + j] ?? 0
        if (s > 0) used[s - 1] = 1
      }
    }
    const free = used.indexOf(0)
    if (free < 0) return -1
    this.names[free] = name
    return free
  }

  /** Writes a window's map: value(x, v) is the v-th number of entry x. Largest first (by value 0) when more entries than fit. */
  set<T>(slot: number, m: Record<string, T> | null, value: (x: T, v: number) => number): void {
    let count = 0
    if (m) for (const _ in m) count++
    const need = Math.min(count, SlotMaps.MAX_PAIRS)
    if (need > this.k) this.grow(need)
    for (let j = 0; j < this.k; j++) this.slots[slot * this.k + j] = 0
    if (!m || count === 0) return
    // more names than pairs (rare): keep the largest
    const names = count > this.k ? Object.keys(m).sort((a, b) => value(m[b] as T, 0) - value(m[a] as T, 0)) : null
    let j = 0
    const put = (name: string): void => {
      const s = this.slotOf(name, slot)
      if (s < 0) return
      this.slots[slot * this.k + j] = s + 1
      for (let v = 0; v < this.values; v++) this.vals[(slot * this.k + j) * this.values + v] = value(m[name] as T, v)
      j++
    }
    if (names) {
      for (const name of names) if (j < this.k) put(name)
    } else for (const name in m) put(name)
  }

  /** The map of a window (null when it had none). */
  get(slot: number): Map<string, number[]> | null {
    let out: Map<string, number[]> | null = null
    for (let j = 0; j < this.k; j++) {
      const s = this.slots[slot * this.k + j] ?? 0
      if (s === 0) continue
      const vs: number[] = []
      for (let v = 0; v < this.values; v++) vs.push(this.vals[(slot * this.k + j) * this.values + v] ?? 0)
      ;(out ??= new Map()).set(this.names[s - 1] ?? '', vs)
    }
    return out
  }
}

const depValue = (n: number): number => n
const modelValue = (x: { n: number; c: number }, v: number): number => (v === 0 ? x.n : x.c)

/**
 * The window values are Float32 (7 significant digits: per-window costs and token counts need no
 * more; sums over the ring are taken in double precision), the window start a Float64; about
 * 6.6 KB for 128 windows instead of 13 KB plus a parsed object per window for its deployments.
 */
export class WindowRing {
  /** most windows kept */
  readonly capacity: number
  /** windows allocated: starts small and doubles up to `capacity`, so a series that only ever sends a few windows (a flood of one-off names) costs a few hundred bytes */
  private cap: number
  private data: Float32Array
  private ts: Float64Array
  private readonly deps: SlotMaps
  /** endpoint rollups: requests and cost per model of each window (allocated on first use) */
  private models: SlotMaps | null = null
  private head = 0 // physical index of the oldest entry (0 until the ring is full at `capacity`)
  size = 0

  constructor(capacity: number, initial = 8) {
    this.capacity = capacity
    this.cap = Math.min(capacity, initial)
    this.data = new Float32Array(this.cap * (NCOLS - 1))
    this.ts = new Float64Array(this.cap)
    this.deps = new SlotMaps(this.cap, 1)
  }

  /** Doubles the allocation (only while not yet full at `capacity`, so head is 0 and slots are in order). */
  private grow(): void {
    const cap = Math.min(this.capacity, this.cap * 2)
    const data = new Float32Array(cap * (NCOLS - 1))
    data.set(this.data)
    const ts = new Float64Array(cap)
    ts.set(this.ts)
    freeOwnedBytes(this.data)
    freeOwnedBytes(this.ts)
    this.data = data
    this.ts = ts
    this.deps.resize(cap)
    this.models?.resize(cap)
    this.cap = cap
  }

  /** Appends a window (overwriting the oldest when full) and returns its logical index. */
  push(values: ArrayLike<number>, deployments: Record<string, number> | null, models: Record<string, { n: number; c: number }> | null = null): number {
    if (this.size === this.cap && this.cap < this.capacity) this.grow()
    let slot: number
    if (this.size < this.cap) {
      slot = (this.head + this.size) % this.cap
      this.size++
    } else {
      slot = this.head
      this.head = (this.head + 1) % this.cap
    }
    const base = slot * (NCOLS - 1)
    this.ts[slot] = values[0] ?? 0
    for (let c = 1; c < NCOLS; c++) this.data[base + c - 1] = values[c] ?? 0
    this.deps.set(slot, deployments, depValue)
    if (models || this.models) (this.models ??= new SlotMaps(this.cap, 2)).set(slot, models, modelValue)
    return this.size - 1
  }

  get(index: number, col: Col): number {
    const slot = (this.head + index) % this.cap
    return col === 0 ? (this.ts[slot] ?? 0) : (this.data[slot * (NCOLS - 1) + col - 1] ?? 0)
  }

  deployments(index: number): Record<string, number> | null {
    const m = this.deps.get((this.head + index) % this.cap)
    if (!m) return null
    const out: Record<string, number> = {}
    for (const [k, v] of m) out[k] = v[0] ?? 0
    return out
  }

  modelShares(index: number): Record<string, { n: number; c: number }> | null {
    const m = this.models?.get((this.head + index) % this.cap)
    if (!m) return null
    const out: Record<string, { n: number; c: number }> = {}
    for (const [k, v] of m) out[k] = { n: v[0] ?? 0, c: v[1] ?? 0 }
    return out
  }

  /** Logical index of the first window with start >= t (size if none). */
  indexAtOrAfter(t: number): number {
    for (let i = this.size - 1; i >= 0; i--) if (this.get(i, COLS.t) < t) return i + 1
    return 0
  }

  /** The windows' totals over logical indexes [from, to): requests, cost, tokens, errors, component costs, retries. */
  totals(from: number, to = this.size): Required<WindowTotals> {
    const t = { n: 0, c: 0, q: 0, i: 0, o: 0, k: 0, e: 0, kw: 0, cu: 0, cr: 0, cw: 0, co: 0, r: 0 }
    for (let x = Math.max(0, from); x < to; x++) {
      t.n += this.get(x, COLS.n)
      t.c += this.get(x, COLS.c)
      t.q += this.get(x, COLS.q)
      t.i += this.get(x, COLS.i)
      t.o += this.get(x, COLS.o)
      t.k += this.get(x, COLS.k)
      t.e += this.get(x, COLS.e)
      t.kw += this.get(x, COLS.kw)
      t.cu += this.get(x, COLS.cu)
      t.cr += this.get(x, COLS.cr)
      t.cw += this.get(x, COLS.cw)
      t.co += this.get(x, COLS.co)
      t.r += this.get(x, COLS.r)
    }
    return t
  }

  /** Sum of one column over logical indexes [from, size). */
  sumFrom(from: number, col: Col): number {
    let s = 0
    for (let i = Math.max(0, from); i < this.size; i++) s += this.get(i, col)
    return s
  }
}
