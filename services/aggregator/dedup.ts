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
  return {
    has(p, id) {
      const s = parts.get(p)
      return s !== undefined && (s.current.has(id) || s.previous.has(id))
    },
    add(p, id, ts) {
      let s = parts.get(p)
      if (!s) parts.set(p, (s = { current: new Set(), previous: new Set(), end: ts + horizonMs }))
      if (ts >= s.end) {
        // a jump of more than a generation forgets both generations
        s.previous = ts >= s.end + horizonMs ? new Set() : s.current
        s.current = new Set()
        s.end = ts + horizonMs
      }
      s.current.add(id)
    },
    drop: (p) => void parts.delete(p),
    size: () => [...parts.values()].reduce((n, s) => n + s.current.size + s.previous.size, 0),
  }
}
