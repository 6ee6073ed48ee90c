/**
 * Seen event IDs per source partition, kept for a horizon of event time (default 1 h), so a
 * redelivered or resent event counts once. All events of a series share a partition (the
 * record key is the series), so a per-partition set sees every copy of an event. After a
 * restart the set is rebuilt from usage_events (see rebuild in service.ts). A copy arriving
 * more than the horizon after the first is not recognized: that bound is the documented limit.
 */
export interface Deduper {
  has(partition: string, id: string): boolean
  add(partition: string, id: string, ts: number): void
  drop(partition: string): void
  size(): number
}

interface Part {
  ids: Map<string, number>
  /** ids in insertion order with their event time, for expiry */
  queue: { id: string; ts: number }[]
  head: number
  maxTs: number
}

export function createDeduper(horizonMs: number): Deduper {
  const parts = new Map<string, Part>()
  const part = (p: string) => {
    let s = parts.get(p)
    if (!s) parts.set(p, (s = { ids: new Map(), queue: [], head: 0, maxTs: -Infinity }))
    return s
  }
  const expire = (s: Part) => {
    const cutoff = s.maxTs - horizonMs
    while (s.head < s.queue.length && s.queue[s.head]!.ts < cutoff) {
      const { id, ts } = s.queue[s.head++]!
      if (s.ids.get(id) === ts) s.ids.delete(id)
    }
    if (s.head > 65_536 && s.head * 2 > s.queue.length) {
      s.queue = s.queue.slice(s.head)
      s.head = 0
    }
  }
  return {
    has: (p, id) => parts.get(p)?.ids.has(id) ?? false,
    add(p, id, ts) {
      const s = part(p)
      s.ids.set(id, ts)
      s.queue.push({ id, ts })
      if (ts > s.maxTs) {
        s.maxTs = ts
        expire(s)
      }
    },
    drop: (p) => void parts.delete(p),
    size: () => [...parts.values()].reduce((n, s) => n + s.ids.size, 0),
  }
}
