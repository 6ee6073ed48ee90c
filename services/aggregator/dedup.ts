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
  /** `fingerprint`, when given, must be idFingerprint(id) (callers that have it save the hashing) */
  has(partition: string, id: string, fingerprint?: number): boolean
  add(partition: string, id: string, ts: number, fingerprint?: number): void
  /**
   * `has` then `add` in one step: true when the ID is new (and now recorded). `fingerprint`, when
   * given, must be idFingerprint(id): callers that computed it elsewhere (the backtest's decode
   * workers) save the hashing.
   */
  addIfNew(partition: string, id: string, ts: number, fingerprint?: number): boolean
  drop(partition: string): void
  size(): number
}

/**
 * FNV-1a of an ID, cut to 30 bits so that it is a small integer in V8. Two IDs with one
 * fingerprint are told apart by comparing the IDs themselves: deduplication stays exact.
 */
export function idFingerprint(id: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 0x01000193)
  return (h >>> 0) & 0x3fffffff
}

/**
 * A set of IDs as an open-addressing table: fingerprints in an Int32Array, and beside each where
 * its ID is. Against a JS Set of strings (measured in the aggregator: 1.5 µs an event at 500k
 * IDs) it hashes no string in V8, grows by one copy of flat arrays, and touches one cache line
 * per probe; an ID is only compared on a fingerprint match.
 *
 * The IDs are copied into a byte arena (a length byte, then a byte a character) rather than kept
 * as the caller's strings: each event's ID is its own string (from JSON.parse), 16 B of header
 * and a pointer beside it, kept alive for the horizon; in the arena a 26-character ID is 27 B,
 * and the table holds no pointer for the GC to trace. An ID with a character above U+00FF, or of
 * 255 characters or more, is kept as its string (`wide`). Comparisons stay exact.
 */
export class IdTable {
  /** fingerprint + 1 of the ID in each slot; 0 = empty */
  private slots: Int32Array
  /** where the slot's ID is: its length byte in `bytes`, or (negative) ~its index in `wide` */
  private at: Int32Array
  private bytes: Uint8Array
  private wide: string[] = []
  private mask: number
  count = 0
  /** bytes of the arena in use */
  used = 0

  /** `bytes`: the arena's initial size (it doubles as it fills) */
  constructor(capacity = 1024, bytes = capacity * 8) {
    this.slots = new Int32Array(capacity)
    this.at = new Int32Array(capacity)
    this.bytes = new Uint8Array(bytes)
    this.mask = capacity - 1
  }

  has(fp: number, id: string): boolean {
    const tag = fp + 1
    for (let i = fp & this.mask; ; i = (i + 1) & this.mask) {
      const t = this.slots[i]!
      if (t === 0) return false
      if (t === tag && this.is(this.at[i]!, id)) return true
    }
  }

  /** Adds an ID known not to be in the table. */
  add(fp: number, id: string): void {
    // at most three quarters full: a slot is 8 B (tag and place), and at most half full (2 to 4
    // slots an ID) the slots weighed about as much as the IDs' bytes; probes stay short (one or
    // two cache lines of tags)
    if ((this.count + 1) * 4 > this.slots.length * 3) this.grow()
    this.put(fp, this.store(id))
    this.count++
  }

  private is(at: number, id: string): boolean {
    if (at < 0) return this.wide[~at] === id
    const b = this.bytes
    const n = id.length
    // an ID that would be kept in `wide` never equals bytes: 255 characters or more (the length
    // byte is less), or a character above U+00FF (every byte is not)
    if (b[at] !== n) return false
    for (let k = 0; k < n; k++) if (b[at + 1 + k] !== id.charCodeAt(k)) return false
    return true
  }

  /** Copies the ID into the arena (or `wide`); returns where it is. */
  private store(id: string): number {
    const n = id.length
    if (n < 255) {
      if (this.used + 1 + n > this.bytes.length) {
        const bytes = new Uint8Array(Math.max(this.bytes.length * 2, this.used + 1 + n))
        bytes.set(this.bytes.subarray(0, this.used))
        this.bytes = bytes
      }
      const b = this.bytes
      const at = this.used
      let k = 0
      for (; k < n; k++) {
        const c = id.charCodeAt(k)
        if (c > 0xff) break
        b[at + 1 + k] = c
      }
      if (k === n) {
        b[at] = n
        this.used = at + 1 + n
        return at
      }
      // a character above U+00FF: the bytes written past `used` are left to be overwritten
    }
    this.wide.push(id)
    return ~(this.wide.length - 1)
  }

  private put(fp: number, at: number): void {
    let i = fp & this.mask
    while (this.slots[i] !== 0) i = (i + 1) & this.mask
    this.slots[i] = fp + 1
    this.at[i] = at
  }

  private grow(): void {
    const slots = this.slots
    const at = this.at
    this.slots = new Int32Array(slots.length * 2)
    this.at = new Int32Array(slots.length * 2)
    this.mask = slots.length * 2 - 1
    for (let i = 0; i < slots.length; i++) if (slots[i] !== 0) this.put(slots[i]! - 1, at[i]!)
  }
}

interface Part {
  current: IdTable
  previous: IdTable
  /** event time at which the current generation ends */
  end: number
}

export function createDeduper(horizonMs: number): Deduper {
  const parts = new Map<string, Part>()
  const part = (p: string, ts: number): Part => {
    let s = parts.get(p)
    if (!s) parts.set(p, (s = { current: new IdTable(), previous: new IdTable(16), end: ts + horizonMs }))
    return s
  }
  const seen = (s: Part, fp: number, id: string) => s.current.has(fp, id) || (s.previous.count > 0 && s.previous.has(fp, id))
  const record = (s: Part, fp: number, id: string, ts: number) => {
    if (ts >= s.end) {
      // a jump of more than a generation forgets both generations
      s.previous = ts >= s.end + horizonMs ? new IdTable(16) : s.current
      // the next generation likely holds about as many IDs as this one: sized for its count (at
      // most three quarters full, as the table keeps itself) and its IDs' bytes (a quarter more:
      // pages of the arena not written yet are not resident), not for the largest it ever was
      s.current = new IdTable(Math.max(1024, 2 ** Math.ceil(Math.log2((4 * s.previous.count) / 3 + 1))), Math.max(8192, s.previous.used + (s.previous.used >> 2)))
      s.end = ts + horizonMs
    }
    s.current.add(fp, id)
  }
  return {
    has(p, id, fingerprint) {
      const s = parts.get(p)
      return s !== undefined && seen(s, fingerprint ?? idFingerprint(id), id)
    },
    add(p, id, ts, fingerprint) {
      const s = part(p, ts)
      const fp = fingerprint ?? idFingerprint(id)
      // an ID already remembered (in either generation) is not added again
      if (!seen(s, fp, id)) record(s, fp, id, ts)
    },
    addIfNew(p, id, ts, fingerprint) {
      const s = part(p, ts)
      const fp = fingerprint ?? idFingerprint(id)
      if (seen(s, fp, id)) return false
      record(s, fp, id, ts)
      return true
    },
    drop: (p) => void parts.delete(p),
    size: () => [...parts.values()].reduce((n, s) => n + s.current.count + s.previous.count, 0),
  }
}
