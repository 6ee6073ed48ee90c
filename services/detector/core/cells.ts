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

/** Where a cell's bytes are: an offset and the space reserved there, and their length. */
export interface CellHandle {
  off: number
  cap: number
  len: number
}

export interface CellStore {
  /** Stores bytes, in `prev`'s space when they fit (else `prev` is freed); returns where they are. */
  put(bytes: Uint8Array, prev: CellHandle | null): CellHandle
  /** Copies the bytes last put at h into `into` (at least h.len long). */
  get(h: CellHandle, into: Uint8Array): void
  free(h: CellHandle): void
  /** bytes reserved (in use or free for reuse) */
  size(): number
}

/** Cells kept as objects when a store is given and the config does not say (see DetectorConfig.hotEndpoints). */
export const DEFAULT_HOT_ENDPOINTS = 64

/**
 * Buffers a cell is read into, kept for reuse: a cell in memory holds its buffer (its typed
 * arrays are views of it, snapshot.ts) and gives it back when it is written out, so reading cold
 * cells back allocates nothing once the pool holds a buffer per cell in memory. Power-of-two sizes.
 */
export class BufferPool {
  private readonly free = new Map<number, Uint8Array[]>()

  take(len: number): Uint8Array {
    let size = 4096
    while (size < len) size *= 2
    return this.free.get(size)?.pop() ?? new Uint8Array(size)
  }

  give(b: Uint8Array): void {
    let l = this.free.get(b.length)
    if (!l) this.free.set(b.length, (l = []))
    l.push(b)
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

  alloc(len: number, prev: CellHandle | null): CellHandle {
    if (prev && prev.cap >= len) {
      prev.len = len
      return prev
    }
    if (prev) this.release(prev)
    const cap = spaceFor(len)
    const off = this.free.get(cap)?.pop() ?? ((this.end += cap), this.end - cap)
    const h = { off, cap, len }
    this.live.add(h)
    this.used += cap
    return h
  }

  release(h: CellHandle): void {
    if (!this.live.delete(h)) return
    this.used -= h.cap
    let l = this.free.get(h.cap)
    if (!l) this.free.set(h.cap, (l = []))
    l.push(h.off)
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
    put(b, prev) {
      const prevOff = prev?.off
      const h = space.alloc(b.length, prev)
      if (prevOff !== undefined && h !== prev) bytes.delete(prevOff)
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
