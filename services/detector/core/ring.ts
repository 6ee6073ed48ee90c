/**
 * Bounded ring of the most recent windows of one key, column-wise in typed arrays (cheap per
 * window, no per-window allocation). Index 0 is the oldest window kept, size-1 the newest.
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
} as const
export type Col = (typeof COLS)[keyof typeof COLS]
export const NCOLS = 18

export class WindowRing {
  readonly capacity: number
  private readonly data: Float64Array
  private readonly deps: (Record<string, number> | null)[]
  /** endpoint rollups: requests and cost per model of each window */
  private readonly models: (Record<string, { n: number; c: number }> | null)[]
  private head = 0 // physical index of the oldest entry
  size = 0

  constructor(capacity: number) {
    this.capacity = capacity
    this.data = new Float64Array(capacity * NCOLS)
    this.deps = new Array<Record<string, number> | null>(capacity).fill(null)
    this.models = new Array<Record<string, { n: number; c: number }> | null>(capacity).fill(null)
  }

  /** Appends a window (overwriting the oldest when full) and returns its logical index. */
  push(values: ArrayLike<number>, deployments: Record<string, number> | null, models: Record<string, { n: number; c: number }> | null = null): number {
    let slot: number
    if (this.size < this.capacity) {
      slot = (this.head + this.size) % this.capacity
      this.size++
    } else {
      slot = this.head
      this.head = (this.head + 1) % this.capacity
    }
    const base = slot * NCOLS
    for (let c = 0; c < NCOLS; c++) this.data[base + c] = values[c] ?? 0
    this.deps[slot] = deployments
    this.models[slot] = models
    return this.size - 1
  }

  get(index: number, col: Col): number {
    return this.data[((this.head + index) % this.capacity) * NCOLS + col] ?? 0
  }

  deployments(index: number): Record<string, number> | null {
    return this.deps[(this.head + index) % this.capacity] ?? null
  }

  modelShares(index: number): Record<string, { n: number; c: number }> | null {
    return this.models[(this.head + index) % this.capacity] ?? null
  }

  /** Logical index of the first window with start >= t (size if none). */
  indexAtOrAfter(t: number): number {
    for (let i = this.size - 1; i >= 0; i--) if (this.get(i, COLS.t) < t) return i + 1
    return 0
  }

  /** Sum of one column over logical indexes [from, size). */
  sumFrom(from: number, col: Col): number {
    let s = 0
    for (let i = Math.max(0, from); i < this.size; i++) s += this.get(i, col)
    return s
  }
}
