/**
 * Snapshots of detector state as bytes, so a cold endpoint's state can leave the heap (see
 * cells.ts). node:v8's Serializer copies plain objects, arrays, Maps and Sets (a reference met
 * twice stays one object) but drops prototypes: the state is built of classes (KeyTracker,
 * WindowRing, BurnProfile, ...). The walk below records, in a fixed depth-first order, which
 * objects had which prototype, and restores them on decode. Typed arrays' contents are written
 * after the object part (encodeSnapshot). Prototypes are numbered per process as they are first
 * met: snapshots never outlive the process (the store is scratch; a restart rebuilds from
 * ClickHouse history).
 *
 * Limits, checked by test/unit/detector-cells.test.ts: state must not hold functions (serialize
 * throws), `#private` fields (not copied), two typed arrays viewing one buffer (each is copied on
 * its own; one typed array referenced twice stays one) or objects shared with state outside the
 * snapshot (they would be copied): such references are passed as `externals` and put back on
 * decode.
 */
import { Deserializer, Serializer } from 'node:v8'

const protos: object[] = []
const protoIds = new Map<object, number>()
const PLAIN = new Set<object | null>([Object.prototype, Array.prototype, Map.prototype, Set.prototype, null])

function protoId(p: object): number {
  let id = protoIds.get(p)
  if (id === undefined) {
    id = protos.length
    protos.push(p)
    protoIds.set(p, id)
  }
  return id
}

/** Visits every object reachable from root (not typed arrays), depth first, each once, in an order a decoded copy repeats. */
function walk(root: unknown, visit: (o: object, index: number) => void): void {
  const seen = new Set<object>()
  let index = 0
  const stack: unknown[] = [root]
  while (stack.length) {
    const v = stack.pop()
    if (v === null || typeof v !== 'object' || ArrayBuffer.isView(v) || v instanceof ArrayBuffer || seen.has(v)) continue
    seen.add(v)
    visit(v, index++)
    // children pushed in reverse so they are visited in property order
    if (v instanceof Map) {
      const items: unknown[] = []
      for (const [k, x] of v) items.push(k, x)
      for (let i = items.length - 1; i >= 0; i--) stack.push(items[i])
    } else if (v instanceof Set) {
      const items = [...v]
      for (let i = items.length - 1; i >= 0; i--) stack.push(items[i])
    } else {
      const keys = Object.keys(v)
      for (let i = keys.length - 1; i >= 0; i--) stack.push((v as Record<string, unknown>)[keys[i] as string])
    }
  }
}

/** Placeholder for an external reference (an object that stays outside the snapshot). */
interface ExternalRef {
  __external: number
}

const VIEW_TYPES = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array] as const
type View = InstanceType<(typeof VIEW_TYPES)[number]>
const align8 = (n: number): number => (n + 7) & ~7

/** Writes typed arrays as (type, length) only, collecting them for the data section. */
class CellSerializer extends Serializer {
  readonly views: View[] = []
  constructor() {
    super()
    // node:v8's hook (used by its DefaultSerializer; not in @types/node)
    ;(this as unknown as { _setTreatArrayBufferViewsAsHostObjects(on: boolean): void })._setTreatArrayBufferViewsAsHostObjects(true)
  }
  _writeHostObject(v: object): void {
    const type = VIEW_TYPES.findIndex((T) => Object.getPrototypeOf(v) === T.prototype)
    if (type < 0) throw new TypeError(`detector snapshot: cannot store a ${Object.getPrototypeOf(v)?.constructor?.name ?? 'host object'} (typed arrays only)`)
    this.writeUint32(type)
    this.writeUint32((v as View).length)
    this.views.push(v as View)
  }
}

/** Makes each typed array a view of the snapshot's data section (offsets within `bytes`), in the order they were written. */
class CellDeserializer extends Deserializer {
  private at: number
  private readonly bytes: Uint8Array
  constructor(head: Uint8Array, bytes: Uint8Array, dataAt: number) {
    super(head)
    this.bytes = bytes
    this.at = dataAt
  }
  _readHostObject(): View {
    const T = VIEW_TYPES[this.readUint32()]
    const length = this.readUint32()
    if (!T) throw new Error('detector snapshot: unknown typed array type (the bytes are not a snapshot of this version)')
    this.at = align8(this.at)
    const v = new T(this.bytes.buffer as ArrayBuffer, this.bytes.byteOffset + this.at, length)
    this.at += length * T.BYTES_PER_ELEMENT
    return v
  }
}

/** reused for every snapshot: a snapshot's bytes are valid until the next encodeSnapshot */
let scratch = new Uint8Array(64 * 1024)

/**
 * Bytes of `root`: [length of the object part: u32][object part (v8)][typed arrays' contents,
 * each 8-byte aligned]. The typed arrays' contents are not copied through the v8 serializer (its
 * growing buffer), and the reader makes them views of the bytes it read (decodeSnapshot): a
 * cold endpoint read back and written again allocates no buffers for its arrays. The result is a
 * view of a scratch buffer, valid until the next call. `externals`: [holder, property] pairs
 * whose values stay outside (set to a placeholder while serializing, restored right after).
 */
export function encodeSnapshot(root: object, externals: [object, string][] = []): Uint8Array {
  const saved = externals.map(([o, k]) => (o as Record<string, unknown>)[k])
  externals.forEach(([o, k], i) => ((o as Record<string, unknown>)[k] = { __external: i } satisfies ExternalRef))
  try {
    const tags: number[] = []
    walk(root, (o, index) => {
      const p = Object.getPrototypeOf(o) as object | null
      if (!PLAIN.has(p)) tags.push(index, protoId(p as object))
    })
    const ser = new CellSerializer()
    ser.writeHeader()
    ser.writeValue([root, tags])
    const head = ser.releaseBuffer()
    let end = align8(4 + head.length)
    for (const v of ser.views) end = align8(end) + v.byteLength
    if (scratch.length < end) scratch = new Uint8Array(Math.max(end, scratch.length * 2))
    new DataView(scratch.buffer).setUint32(0, head.length, true)
    scratch.set(head, 4)
    let at = align8(4 + head.length)
    for (const v of ser.views) {
      at = align8(at)
      scratch.set(new Uint8Array(v.buffer, v.byteOffset, v.byteLength), at)
      at += v.byteLength
    }
    return scratch.subarray(0, end)
  } finally {
    externals.forEach(([o, k], i) => ((o as Record<string, unknown>)[k] = saved[i]))
  }
}

/**
 * The object graph of a snapshot, prototypes restored and external references put back from
 * `externals` (by position). Its typed arrays are views of `bytes` (which must start 8-byte
 * aligned): the caller keeps `bytes` for as long as the state lives.
 */
export function decodeSnapshot<T>(bytes: Uint8Array, externals: unknown[] = []): T {
  if (bytes.byteOffset % 8 !== 0) throw new Error('detector snapshot: bytes must start 8-byte aligned')
  const headLen = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true)
  const des = new CellDeserializer(bytes.subarray(4, 4 + headLen), bytes, align8(4 + headLen))
  des.readHeader()
  const [root, tags] = des.readValue() as [T, number[]]
  let t = 0
  const fix: [Record<string, unknown>, string, number][] = []
  walk(root, (o, index) => {
    if (t < tags.length && tags[t] === index) {
      Object.setPrototypeOf(o, protos[tags[t + 1] as number] as object)
      t += 2
    }
    if (externals.length && !(o instanceof Map) && !(o instanceof Set)) {
      for (const k of Object.keys(o)) {
        const x = (o as Record<string, unknown>)[k] as ExternalRef | null
        if (x !== null && typeof x === 'object' && typeof x.__external === 'number' && Object.keys(x).length === 1) fix.push([o as Record<string, unknown>, k, x.__external])
      }
    }
  })
  for (const [o, k, i] of fix) o[k] = externals[i]
  return root
}
