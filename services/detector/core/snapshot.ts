/**
 * Snapshots of detector state as bytes, so a cold endpoint's state can leave the heap (see
 * cells.ts). `v8.serialize` copies plain objects, arrays, Maps, Sets and typed arrays (shared
 * references and views of one buffer stay shared within a snapshot) but drops prototypes: the
 * state is built of classes (KeyTracker, WindowRing, BurnProfile, ...). The walk below records,
 * in a fixed depth-first order, which objects had which prototype, and restores them on decode.
 * Prototypes are numbered per process as they are first met: snapshots never outlive the process
 * (the store is scratch; a restart rebuilds from ClickHouse history).
 *
 * Limits, checked by test/unit/detector-cells.test.ts: state must not hold functions (serialize
 * throws), `#private` fields (not copied), two typed arrays viewing one buffer (node:v8 copies
 * each view on its own; one typed array referenced twice stays one) or objects shared with state
 * outside the snapshot (they would be copied): such references are passed as `externals` and put
 * back on decode.
 */
import { deserialize, serialize } from 'node:v8'

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

/**
 * Bytes of `root`. `externals`: [holder, property] pairs whose values stay outside (set to a
 * placeholder while serializing, restored on the live object right after).
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
    return serialize([root, tags])
  } finally {
    externals.forEach(([o, k], i) => ((o as Record<string, unknown>)[k] = saved[i]))
  }
}

/** The object graph of a snapshot, prototypes restored and external references put back from `externals` (by position). */
export function decodeSnapshot<T>(bytes: Uint8Array, externals: unknown[] = []): T {
  const [root, tags] = deserialize(bytes) as [T, number[]]
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
