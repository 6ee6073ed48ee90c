/**
 * Snapshots of detector state as bytes, so a cold endpoint's state can leave the heap (see
 * cells.ts). A small binary codec for the state's object graph: objects (their class restored),
 * arrays, Maps, Sets, numbers, strings, booleans, null, undefined and typed arrays; an object met
 * twice stays one object, and typed arrays' contents are written 8-byte aligned so the reader makes
 * them views of the bytes it read instead of copies.
 *
 * Why not node:v8's Serializer (the first version): each snapshot allocated a C++ context and a
 * malloc'd buffer, classes had to be restored by a second walk with Object.setPrototypeOf, and
 * that walk built a path string per key. This codec writes into one reused buffer and allocates
 * only the objects it decodes: a cold window takes about half the time and the bytes are 19%
 * fewer (`npm run bench`, part 4). It did not by itself lower RSS; V8's heap sizing did
 * (shared/v8-memory.ts).
 *
 * An object's class and keys form a shape, numbered per process as first met and written as that
 * number: snapshots never outlive the process (the store is scratch; a restart rebuilds from
 * ClickHouse history). Each shape gets a generated constructor that sets its keys by name, so
 * decoded objects keep fast properties. Objects whose keys are data are written as dictionaries
 * (see Shape).
 *
 * Limits (test/unit/detector-cells.test.ts): state must not hold functions, symbols, bigints,
 * DataViews, bare ArrayBuffers or built-ins such as Date (encode throws, naming the path);
 * `#private` fields, non-enumerable and symbol keys are not copied; enumerable keys a prototype
 * holds are copied as own (the state's prototypes are classes, whose methods are not enumerable);
 * two typed arrays viewing one buffer are copied each on its own (one typed array referenced twice
 * stays one); sparse arrays come back dense (holes read as undefined). Objects shared with state
 * outside the snapshot are passed as `externals` and put back on decode.
 */

const TAG = { undef: 0, null: 1, true: 2, false: 3, int: 4, num: 5, str: 6, obj: 7, arr: 8, map: 9, set: 10, view: 11, ref: 12, ext: 13, dict: 14 } as const

const VIEW_TYPES = [Int8Array, Uint8Array, Uint8ClampedArray, Int16Array, Uint16Array, Int32Array, Uint32Array, Float32Array, Float64Array, BigInt64Array, BigUint64Array] as const
export type View = InstanceType<(typeof VIEW_TYPES)[number]>
const VIEW_TYPE = new Map<object, number>(VIEW_TYPES.map((T, i) => [T.prototype, i]))
const align8 = (n: number): number => (n + 7) & ~7

/**
 * A class and key list. `make` is a constructor generated for the shape: it registers the new
 * object (for references back to it) and sets its keys by name from successive reads, so V8 sizes
 * the objects it makes for their keys, as it does for a class's.
 *
 * Shapes are for objects whose keys are code's (class fields, struct-like records). Objects whose
 * keys are data (a window's deployments or models by name) would make a new shape, and compile a
 * constructor, for every new set of names, for as long as the process runs; so a plain object
 * (prototype Object.prototype or null) gets a shape only if its keys are identifiers (a deployment
 * ID or a model name rarely is: `search-svc-r1`, `gpt-4o`) and at most MAX_SHAPE_KEYS, and the
 * table stops growing at MAX_SHAPES shapes and MAX_TRIE_NODES keys. Any other object is written
 * as a dictionary (its prototype's number, then key and value pairs): slower to read, same result.
 */
interface Shape {
  id: number
  make: new (register: (o: object) => void, read: () => unknown) => object
}
interface ShapeNode {
  shape: Shape | null
  next: Map<string, ShapeNode> | null
}
const MAX_SHAPES = 1024
const MAX_SHAPE_KEYS = 48
const MAX_TRIE_NODES = 16_384
const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/
const shapes: Shape[] = []
/** prototype by shape id */
const protoOfShape: (object | null)[] = []
/** by prototype, then key by key: a trie, so finding a known shape allocates nothing */
const shapeRoots = new Map<object | null, ShapeNode>()
let trieNodes = 0
/** prototypes of dictionary-written objects, numbered per process */
const dictProtos: (object | null)[] = []
const dictProtoIds = new Map<object | null, number>()

/** `v`'s shape, made the first time it is met; null: write `v` as a dictionary. */
function shapeFor(v: object, proto: object | null): Shape | null {
  const plain = proto === Object.prototype || proto === null
  let node = shapeRoots.get(proto)
  if (!node) {
    if (trieNodes >= MAX_TRIE_NODES) return null
    shapeRoots.set(proto, (node = { shape: null, next: null }))
    trieNodes++
  }
  let n = 0
  // for-in: own enumerable keys (the state's prototypes are classes, whose methods are not
  // enumerable), from V8's enum cache, without allocating a key array
  for (const k in v) {
    if (++n > MAX_SHAPE_KEYS) return null
    let next: ShapeNode | undefined = node.next?.get(k)
    if (!next) {
      if (trieNodes >= MAX_TRIE_NODES || k === '__proto__' || (plain && !IDENTIFIER.test(k))) return null
      next = { shape: null, next: null }
      ;(node.next ??= new Map()).set(k, next)
      trieNodes++
    }
    node = next
  }
  if (node.shape) return node.shape
  if (shapes.length >= MAX_SHAPES) return null
  const keys: string[] = []
  for (const k in v) keys.push(k)
  const body = ['register(this)', ...keys.map((k) => `this[${JSON.stringify(k)}] = read()`)].join('\n')
  const make = new Function('register', 'read', body) as Shape['make']
  // a null prototype: `new` would give Object.prototype, so such objects are made plain and re-parented
  make.prototype = proto ?? Object.prototype
  node.shape = { id: shapes.length, make }
  shapes.push(node.shape)
  protoOfShape.push(proto)
  return node.shape
}

/** Shapes made so far in this process (tests: keys that are data make none). */
export function snapshotShapeCount(): number {
  return shapes.length
}

function dictProtoId(proto: object | null): number {
  let id = dictProtoIds.get(proto)
  if (id === undefined) {
    id = dictProtos.length
    dictProtos.push(proto)
    dictProtoIds.set(proto, id)
  }
  return id
}

// --- writer: one buffer, reused (a snapshot's bytes are valid until the next encodeSnapshot) -------
let out = Buffer.allocUnsafeSlow(64 * 1024)
let dv = new DataView(out.buffer, out.byteOffset, out.byteLength)
let pos = 0
/** typed arrays written by the current encodeSnapshot, when its caller asked for them */
let views: View[] | undefined
const seen = new Map<object, number>()
const extOf = new Map<object, number>()

function ensure(n: number): void {
  if (pos + n <= out.length) return
  let size = out.length * 2
  while (size < pos + n) size *= 2
  const next = Buffer.allocUnsafeSlow(size)
  out.copy(next, 0, 0, pos)
  out = next
  dv = new DataView(out.buffer, out.byteOffset, out.byteLength)
}
function u8(v: number): void {
  ensure(1)
  out[pos++] = v
}
function u32(v: number): void {
  ensure(4)
  dv.setUint32(pos, v, true)
  pos += 4
}

/** keys from the root to the value being written, joined only for an error message */
const trail: string[] = []
const where = (): string => ['state', ...trail].join('.')

function write(v: unknown): void {
  switch (typeof v) {
    case 'undefined':
      return u8(TAG.undef)
    case 'boolean':
      return u8(v ? TAG.true : TAG.false)
    case 'number':
      if ((v | 0) === v && !Object.is(v, -0)) {
        ensure(5)
        out[pos++] = TAG.int
        dv.setInt32(pos, v, true)
        pos += 4
      } else {
        ensure(9)
        out[pos++] = TAG.num
        dv.setFloat64(pos, v, true)
        pos += 8
      }
      return
    case 'string': {
      ensure(5 + v.length * 3)
      out[pos] = TAG.str
      const n = out.write(v, pos + 5, 'utf8')
      dv.setUint32(pos + 1, n, true)
      pos += 5 + n
      return
    }
    case 'object':
      if (v === null) return u8(TAG.null)
      return writeObject(v)
    default:
      throw new TypeError(`detector snapshot: cannot store a ${typeof v} at ${where()} (state must be data: objects, arrays, Maps, Sets, typed arrays, numbers, strings)`)
  }
}

function writeObject(v: object): void {
  const ext = extOf.get(v)
  if (ext !== undefined) {
    u8(TAG.ext)
    return u32(ext)
  }
  const id = seen.get(v)
  if (id !== undefined) {
    u8(TAG.ref)
    return u32(id)
  }
  seen.set(v, seen.size)
  const proto = Object.getPrototypeOf(v) as object | null
  if (Array.isArray(v)) {
    u8(TAG.arr)
    u32(v.length)
    trail.push('[]')
    for (let i = 0; i < v.length; i++) write(v[i])
    trail.pop()
  } else if (proto === Map.prototype) {
    const m = v as Map<unknown, unknown>
    u8(TAG.map)
    u32(m.size)
    trail.push('get()')
    for (const [k, x] of m) {
      write(k)
      write(x)
    }
    trail.pop()
  } else if (proto === Set.prototype) {
    const s = v as Set<unknown>
    u8(TAG.set)
    u32(s.size)
    trail.push('[]')
    for (const x of s) write(x)
    trail.pop()
  } else if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) {
    const type = VIEW_TYPE.get(proto as object)
    if (type === undefined) throw new TypeError(`detector snapshot: cannot store a ${proto?.constructor?.name ?? 'buffer'} at ${where()} (typed arrays only)`)
    const a = v as View
    ensure(6 + 7 + a.byteLength)
    out[pos++] = TAG.view
    out[pos++] = type
    dv.setUint32(pos, a.length, true)
    pos = align8(pos + 4)
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), pos)
    pos += a.byteLength
    views?.push(a)
  } else {
    if (v instanceof Map || v instanceof Set || v instanceof Date || v instanceof RegExp || v instanceof Error || v instanceof Promise || v instanceof WeakMap || v instanceof WeakSet) {
      throw new TypeError(`detector snapshot: cannot store a ${proto?.constructor?.name ?? 'built-in'} at ${where()} (plain Maps and Sets, objects, arrays and typed arrays only)`)
    }
    const shape = shapeFor(v, proto)
    if (shape) {
      u8(TAG.obj)
      u32(shape.id)
    } else {
      let n = 0
      for (const _ in v) n++
      u8(TAG.dict)
      u32(dictProtoId(proto))
      u32(n)
    }
    for (const k in v) {
      trail.push(k)
      if (!shape) write(k)
      write((v as Record<string, unknown>)[k])
      trail.pop()
    }
  }
}

/**
 * Bytes of `root`, a view of a reused buffer valid until the next call. `externals`: [holder,
 * property] pairs whose values (objects) stay outside: wherever the snapshot meets one of them it
 * writes its position, and decodeSnapshot puts back the object given at that position.
 * `typedArrays`, when given, receives every typed array written (a caller dropping `root` can free their bytes).
 */
export function encodeSnapshot(root: object, externals: [object, string][] = [], typedArrays?: View[]): Uint8Array {
  pos = 0
  views = typedArrays
  try {
    for (let i = 0; i < externals.length; i++) {
      const [o, k] = externals[i] as [object, string]
      const x = (o as Record<string, unknown>)[k]
      if (x !== null && typeof x === 'object' && !extOf.has(x)) extOf.set(x, i)
    }
    trail.length = 0
    write(root)
    return new Uint8Array(out.buffer, out.byteOffset, pos)
  } finally {
    seen.clear()
    extOf.clear()
    views = undefined
  }
}

// --- reader -------------------------------------------------------------------------------------------
const EMPTY = Buffer.alloc(0)
let src: Buffer = EMPTY
let rdv = new DataView(src.buffer)
let at = 0
const objs: unknown[] = []
const register = (o: object): void => {
  objs.push(o)
}
let exts: unknown[] = []

function ru32(): number {
  const v = rdv.getUint32(at, true)
  at += 4
  return v
}

function read(): unknown {
  const tag = src[at++]
  switch (tag) {
    case TAG.undef:
      return undefined
    case TAG.null:
      return null
    case TAG.true:
      return true
    case TAG.false:
      return false
    case TAG.int: {
      const v = rdv.getInt32(at, true)
      at += 4
      return v
    }
    case TAG.num: {
      const v = rdv.getFloat64(at, true)
      at += 8
      return v
    }
    case TAG.str: {
      const n = ru32()
      const s = src.toString('utf8', at, at + n)
      at += n
      return s
    }
    case TAG.obj: {
      const id = ru32()
      const shape = shapes[id]
      if (!shape) throw new Error('detector snapshot: unknown shape (the bytes are not a snapshot of this process)')
      const o = new shape.make(register, read)
      if (protoOfShape[id] === null) Object.setPrototypeOf(o, null)
      return o
    }
    case TAG.dict: {
      const proto = dictProtos[ru32()]
      if (proto === undefined) throw new Error('detector snapshot: unknown prototype (the bytes are not a snapshot of this process)')
      const n = ru32()
      const o = (proto === Object.prototype ? {} : Object.create(proto)) as Record<string, unknown>
      objs.push(o)
      for (let i = 0; i < n; i++) {
        const k = read() as string
        const x = read()
        // a key named __proto__ is data here: define it, an assignment would set the prototype
        if (k === '__proto__') Object.defineProperty(o, k, { value: x, writable: true, enumerable: true, configurable: true })
        else o[k] = x
      }
      return o
    }
    case TAG.arr: {
      const n = ru32()
      const a: unknown[] = []
      objs.push(a)
      for (let i = 0; i < n; i++) a.push(read())
      return a
    }
    case TAG.map: {
      const n = ru32()
      const m = new Map<unknown, unknown>()
      objs.push(m)
      for (let i = 0; i < n; i++) {
        const k = read()
        m.set(k, read())
      }
      return m
    }
    case TAG.set: {
      const n = ru32()
      const s = new Set<unknown>()
      objs.push(s)
      for (let i = 0; i < n; i++) s.add(read())
      return s
    }
    case TAG.view: {
      const T = VIEW_TYPES[src[at++] as number]
      if (!T) throw new Error('detector snapshot: unknown typed array type (the bytes are not a snapshot of this version)')
      const length = ru32()
      at = align8(at)
      const v = new T(src.buffer as ArrayBuffer, src.byteOffset + at, length)
      at += v.byteLength
      objs.push(v)
      return v
    }
    case TAG.ref:
      return objs[ru32()]
    case TAG.ext:
      return exts[ru32()]
    default:
      throw new Error(`detector snapshot: unknown tag ${tag} at byte ${at - 1} (the bytes are not a snapshot of this version)`)
  }
}

/**
 * The object graph of a snapshot, classes restored and external references put back from
 * `externals` (by position). Its typed arrays are views of `bytes` (which must start 8-byte
 * aligned, as encodeSnapshot's do): the caller keeps `bytes` for as long as the state lives.
 */
export function decodeSnapshot<T>(bytes: Uint8Array, externals: unknown[] = []): T {
  if (bytes.byteOffset % 8 !== 0) throw new Error('detector snapshot: bytes must start 8-byte aligned')
  src = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  rdv = new DataView(src.buffer, src.byteOffset, src.byteLength)
  at = 0
  exts = externals
  try {
    return read() as T
  } finally {
    objs.length = 0
    exts = []
    src = EMPTY
  }
}
