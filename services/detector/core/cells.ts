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
  /** The bytes last put at h, in a buffer the caller may keep (decoded typed arrays can be views of it). */
  get(h: CellHandle): Uint8Array
  free(h: CellHandle): void
  /** bytes reserved (in use or free for reuse) */
  size(): number
}

/** Cells kept as objects when a store is given and the config does not say (see DetectorConfig.hotEndpoints). */
export const DEFAULT_HOT_ENDPOINTS = 64

/** Space classes: powers of two from 1 KiB, so a cell that grows a little reuses its space and freed space is reused by size. */
export function spaceFor(len: number): number {
  let cap = 1024
  while (cap < len) cap *= 2
  return cap
}

/**
 * Free space by class, and the end of the used space: the allocation shared by the adapters.
 * Offsets are handed out by the caller's medium (file offsets, or keys in memory).
 */
export class SpaceAllocator {
  private readonly free = new Map<number, number[]>()
  private end = 0

  alloc(len: number, prev: CellHandle | null): CellHandle {
    if (prev && prev.cap >= len) return { off: prev.off, cap: prev.cap, len }
    if (prev) this.release(prev)
    const cap = spaceFor(len)
    const off = this.free.get(cap)?.pop() ?? ((this.end += cap), this.end - cap)
    return { off, cap, len }
  }

  release(h: CellHandle): void {
    let l = this.free.get(h.cap)
    if (!l) this.free.set(h.cap, (l = []))
    l.push(h.off)
  }

  get size(): number {
    return this.end
  }
}

/** Cells as bytes in memory (tests; and where no scratch file may be written, still 4–5× smaller than the objects). */
export function createMemoryCellStore(): CellStore {
  const space = new SpaceAllocator()
  const bytes = new Map<number, Uint8Array>()
  return {
    put(b, prev) {
      const h = space.alloc(b.length, prev)
      bytes.set(h.off, b.slice())
      return h
    },
    get(h) {
      const b = bytes.get(h.off)
      if (!b) throw new Error(`cell store: nothing at offset ${h.off}`)
      return b.subarray(0, h.len)
    },
    free(h) {
      bytes.delete(h.off)
      space.release(h)
    },
    size: () => space.size,
  }
}
