/**
 * The cell store: where an endpoint's detector state (its rollup and its series: window rings,
 * change-point evidence, baselines, profiles) lives while it is cold. The core keeps the
 * `hotEndpoints` most recently used cells as objects and writes the others to the store as bytes
 * (snapshot.ts), reading them back when their next window arrives: the heap holds a few hundred
 * bytes per series (its reference, team membership and mirrors), whatever the number of series.
 * The port is the core's; adapters: memory (below: tests, and a bound on objects alone) and a
 * scratch file (services/detector/file-cell-store.ts, the service's default). The store needs no
 * durability: a restarted detector rebuilds its state from ClickHouse history.
 */

/**
 * Where a cell's bytes are: an offset and the space reserved there (0: none yet, or freed), and
 * their length. The caller owns the handle (the core's reference to a cell is one) and the store
 * keeps it up to date: a put moves it, compaction moves every live one.
 */
export interface CellHandle {
  off: number
  cap: number
  len: number
}

export const newCellHandle = (): CellHandle => ({ off: 0, cap: 0, len: 0 })

export interface CellStore {
  /** Stores bytes at h: in its space when they fit, else in new space (its old space is freed); updates h. */
  put(bytes: Uint8Array, h: CellHandle): void
  /** Copies the bytes last put at h into `into` (at least h.len long). */
  get(h: CellHandle, into: Uint8Array): void
  /** Frees h's space (h.cap becomes 0). */
  free(h: CellHandle): void
  /** bytes reserved (in use or free for reuse) */
  size(): number
}

/** V8 keeps a typed array of at most this many bytes on its own heap (typed_array_max_size_in_heap). */
const ON_HEAP_MAX_BYTES = 64

/**
 * Frees the bytes of a typed array that is being dropped, now, when they are its own (a
 * standalone array, not a view of a cell's buffer). Bytes outside V8's heap are malloc'd, and V8
 * frees a dropped array's bytes only when a GC finds it; rings that double while they fill, and
 * new series, drop such arrays by the hundred thousand while the detector replays its history:
 * glibc's heap then grew to hold them until the next GC, and kept what it freed inside it
 * resident (`npm run bench`, the rss part, with an LD_PRELOAD malloc counter: 1 GB of typed
 * arrays allocated and dropped at 20,000 series; malloc's free space grew by 8–9 MB over it).
 * The caller vouches that nothing reads `a` again: this detaches its buffer (length 0 after).
 */
export function freeOwnedBytes(a: ArrayBufferView): void {
  if (a.byteLength <= ON_HEAP_MAX_BYTES) return // on V8's heap: reading .buffer would move it out
  const b = a.buffer as ArrayBuffer & { readonly detached: boolean; transfer(length: number): ArrayBuffer }
  if (b.byteLength === a.byteLength && !b.detached && !(b instanceof SharedArrayBuffer)) b.transfer(0)
}

/** Cells kept as objects when a store is given and the config does not say (see DetectorConfig.hotEndpoints). */
export const DEFAULT_HOT_ENDPOINTS = 64

/**
 * Buffers a cell is read into, kept for reuse: a cell in memory holds its buffer (its typed
 * arrays are views of it, snapshot.ts) and gives it back when it is written out, so reading cold
 * cells back allocates no buffer in the steady state (one is given back for each one taken).
 * At most `maxFree` are kept, of any size; `take` picks the smallest that fits. (Kept per
 * power-of-two class and unbounded, as first written, the pool ended holding a hot set's worth of
 * buffers in every class the cells grew through: 8 MB at 20,000 series, `npm run bench`.)
 */
export class BufferPool {
  private readonly free: Uint8Array[] = []
  private readonly maxFree: number
  constructor(maxFree = 16) {
    this.maxFree = maxFree
  }

  take(len: number): Uint8Array {
    let best = -1
    for (let i = 0; i < this.free.length; i++) {
      const n = (this.free[i] as Uint8Array).length
      if (n >= len && (best < 0 || n < (this.free[best] as Uint8Array).length)) best = i
    }
    if (best < 0) return new Uint8Array(spaceFor(len))
    const b = this.free[best] as Uint8Array
    this.free[best] = this.free[this.free.length - 1] as Uint8Array
    this.free.pop()
    return b
  }

  give(b: Uint8Array): void {
    if (this.free.length < this.maxFree) {
      this.free.push(b)
      return
    }
    // full: keep the larger (it fits more cells), let the smaller go (its bytes freed now)
    let min = 0
    for (let i = 1; i < this.free.length; i++) if ((this.free[i] as Uint8Array).length < (this.free[min] as Uint8Array).length) min = i
    const smaller = this.free[min] as Uint8Array
    if (smaller.length < b.length) {
      this.free[min] = b
      freeOwnedBytes(smaller)
    } else freeOwnedBytes(b)
  }

  /** bytes held free (tests) */
  freeBytes(): number {
    return this.free.reduce((s, b) => s + b.length, 0)
  }
}

/**
 * Space reserved for `len` bytes: 1/8 more, in whole KiB, so a cell whose bytes change a little
 * from window to window is rewritten in place.
 */
export function spaceFor(len: number): number {
  return Math.max(1024, Math.ceil((len * 1.125) / 1024) * 1024)
}

/**
 * Free space by class, and the end of the used space: the allocation shared by the adapters.
 * Handles are the caller's to keep: a put that fits updates its handle in place, and compact()
 * moves every live handle (so the caller's references stay valid).
 */
export class SpaceAllocator {
  private readonly free = new Map<number, number[]>()
  private end = 0
  /** space held by live handles */
  private used = 0
  readonly live = new Set<CellHandle>()

  /** Space for `len` bytes at h: its own when they fit, else new space (its old space released). */
  alloc(len: number, h: CellHandle): void {
    if (h.cap > 0 && h.cap >= len) {
      h.len = len
      return
    }
    this.release(h)
    const cap = spaceFor(len)
    h.off = this.free.get(cap)?.pop() ?? ((this.end += cap), this.end - cap)
    h.cap = cap
    h.len = len
    this.live.add(h)
    this.used += cap
  }

  release(h: CellHandle): void {
    if (!this.live.delete(h)) return
    this.used -= h.cap
    let l = this.free.get(h.cap)
    if (!l) this.free.set(h.cap, (l = []))
    l.push(h.off)
    h.cap = 0
    h.len = 0
  }

  get size(): number {
    return this.end
  }

  /**
   * Whether free space has grown past a quarter of the live space (plus `slack` bytes): cells grow
   * in step (every series' ring fills over its first two hours), so the space they outgrow is
   * seldom the size another needs, and the medium would hold about twice the live bytes.
   */
  fragmented(slack: number): boolean {
    return this.end - this.used > this.used / 4 + slack
  }

  /** Lays the live handles out again back to back (each in the class its length needs); `move(h, newOff, newCap)` copies its bytes, oldest offset first. */
  compact(move: (h: CellHandle, off: number, cap: number) => void): void {
    let end = 0
    for (const h of [...this.live].sort((a, b) => a.off - b.off)) {
      const cap = spaceFor(h.len)
      move(h, end, cap)
      h.off = end
      h.cap = cap
      end += cap
    }
    this.free.clear()
    this.end = end
    this.used = end
  }
}

/** Cells as bytes in memory (tests; and where no scratch file may be written, still 4–5× smaller than the objects). */
export function createMemoryCellStore(): CellStore {
  const space = new SpaceAllocator()
  const bytes = new Map<number, Uint8Array>()
  return {
    put(b, h) {
      const prevOff = h.cap > 0 ? h.off : -1
      space.alloc(b.length, h)
      if (prevOff >= 0 && h.off !== prevOff) bytes.delete(prevOff)
      bytes.set(h.off, new Uint8Array(b)) // a copy (b may be a view of a reused buffer)
      if (space.fragmented(0)) {
        const moved = new Map<number, Uint8Array>()
        space.compact((x, off) => moved.set(off, bytes.get(x.off) as Uint8Array))
        bytes.clear()
        for (const [off, v] of moved) bytes.set(off, v)
      }
      return h
    },
    get(h, into) {
      const b = bytes.get(h.off)
      if (!b) throw new Error(`cell store: nothing at offset ${h.off}`)
      into.set(b.subarray(0, h.len))
    },
    free(h) {
      if (space.live.has(h)) bytes.delete(h.off)
      space.release(h)
    },
    size: () => space.size,
  }
}
