/**
 * Seen event IDs per source partition, so a redelivered or resent event counts once. All events
 * of a series share a partition (the record key is the series), so a per-partition set sees
 * every copy of an event.
 *
 * IDs are kept in two generations of `horizonMs` of event time each: a new generation starts
 * when event time passes the current one's end, and the oldest is dropped whole (O(1) expiry).
 * An ID is therefore remembered for at least `horizonMs` (default 1 h) and at most twice that.
 * After a restart the set is rebuilt from usage_events (see the aggregator's partition load).
 * A copy arriving more than the horizon after the first may count twice: the documented limit.
 */
export interface Deduper {
  has(partition: string, id: string): boolean
  add(partition: string, id: string, ts: number): void
  /** `has` then `add` in one step (one partition lookup): true when the ID is new and now recorded */
  addIfNew(partition: string, id: string, ts: number): boolean
  drop(partition: string): void
  size(): number
}

interface Part {
  current: Set<string>
  previous: Set<string>
  /** event time at which the current generation ends */
  end: number
}

export function createDeduper(horizonMs: number): Deduper {
  const parts = new Map<string, Part>()
  const record = (s: Part, id: string, ts: number) => {
    if (ts >= s.end) {
      // a jump of more than a generation forgets both generations
      s.previous = ts >= s.end + horizonMs ? new Set() : s.current
      s.current = new Set()
      s.end = ts + horizonMs
    }
    s.current.add(id)
  }
  return {
    has(p, id) {
      const s = parts.get(p)
      return s !== undefined && (s.current.has(id) || s.previous.has(id))
    },
    add(p, id, ts) {
      let s = parts.get(p)
      if (!s) parts.set(p, (s = { current: new Set(), previous: new Set(), end: ts + horizonMs }))
      record(s, id, ts)
    },
    addIfNew(p, id, ts) {
      let s = parts.get(p)
      if (!s) parts.set(p, (s = { current: new Set(), previous: new Set(), end: ts + horizonMs }))
      else if (s.current.has(id) || (s.previous.size > 0 && s.previous.has(id))) return false
      record(s, id, ts)
      return true
    },
    drop: (p) => void parts.delete(p),
    size: () => [...parts.values()].reduce((n, s) => n + s.current.size + s.previous.size, 0),
  }
}

/**
 * FNV-1a of an ID, cut to 30 bits so that it is a small integer in V8 (a cheap map key). Two IDs
 * with one fingerprint are told apart by comparing the IDs themselves.
 */
export function idFingerprint(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return (h >>> 0) & 0x3fffffff
}

export interface FingerprintDeduper {
  /** As Deduper.addIfNew, given the ID's idFingerprint (computed where the ID was parsed). */
  addIfNew(partition: string, fingerprint: number, id: string, ts: number): boolean
  size(): number
}

type Bucket = string | string[]
const holds = (b: Bucket | undefined, id: string) => b !== undefined && (b === id || (typeof b !== 'string' && b.includes(id)))

/**
 * The Deduper's semantics (two generations of `horizonMs` of event time per partition) keyed by
 * fingerprint: the backtest's decode workers fingerprint each ID, so the main thread, which
 * must deduplicate in file order, never hashes an ID string. Exact: a fingerprint match is
 * confirmed by comparing the IDs.
 */
export function createFingerprintDeduper(horizonMs: number): FingerprintDeduper {
  interface FpPart {
    current: Map<number, Bucket>
    previous: Map<number, Bucket>
    end: number
  }
  const parts = new Map<string, FpPart>()
  return {
    addIfNew(p, fp, id, ts) {
      let s = parts.get(p)
      if (!s) parts.set(p, (s = { current: new Map(), previous: new Map(), end: ts + horizonMs }))
      const cur = s.current.get(fp)
      if (holds(cur, id) || (s.previous.size > 0 && holds(s.previous.get(fp), id))) return false
      if (ts >= s.end) {
        s.previous = ts >= s.end + horizonMs ? new Map() : s.current
        s.current = new Map()
        s.end = ts + horizonMs
        s.current.set(fp, id)
        return true
      }
      s.current.set(fp, cur === undefined ? id : typeof cur === 'string' ? [cur, id] : [...cur, id])
      return true
    },
    size: () => {
      let n = 0
      for (const s of parts.values()) for (const m of [s.current, s.previous]) for (const b of m.values()) n += typeof b === 'string' ? 1 : b.length
      return n
    },
  }
}
