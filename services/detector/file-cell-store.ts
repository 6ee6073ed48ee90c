/**
 * The cell store's file adapter: cold endpoint cells as bytes in one scratch file, read and
 * written in place with positioned I/O (pread/pwrite; the detector core stays synchronous). The
 * file is unlinked as soon as it is open: nothing is left behind by a crash, and nothing needs
 * it after one (a restarted detector rebuilds its state from ClickHouse). Its pages sit in the
 * kernel's page cache, which the kernel can write out and reclaim; the process holds none of them.
 * When the space cells outgrew passes a quarter of the live space, the live cells are copied into a fresh
 * file back to back (a pause of one sequential copy; it happens while rings fill, not after).
 */
import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { SpaceAllocator, type CellStore } from './core/cells.ts'

export interface FileCellStore extends CellStore {
  close(): void
}

/** Compaction waits for at least this much free space in the file (see SpaceAllocator.fragmented). */
const COMPACT_SLACK_BYTES = 64 * 2 ** 20

export function createFileCellStore(dir: string, o: { compactSlackBytes?: number } = {}): FileCellStore {
  const slack = o.compactSlackBytes ?? COMPACT_SLACK_BYTES
  mkdirSync(dir, { recursive: true })
  const open = (): number => {
    const path = join(dir, `detector-cells-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}.bin`)
    const fd = openSync(path, 'w+', 0o600)
    unlinkSync(path)
    return fd
  }
  let fd = open()
  const space = new SpaceAllocator()
  let closed = false
  const readAt = (f: number, off: number, len: number, b: Uint8Array): Uint8Array => {
    let done = 0
    while (done < len) {
      const n = readSync(f, b, done, len - done, off + done)
      if (n === 0) throw new Error(`detector cell store: ${len} bytes at offset ${off} not found in the scratch file (read ${done})`)
      done += n
    }
    return b.subarray(0, len)
  }
  const writeAt = (f: number, b: Uint8Array, off: number): void => {
    let done = 0
    while (done < b.length) done += writeSync(f, b, done, b.length - done, off + done)
  }
  /** Copies the live cells into a new file, back to back, and drops the old one. */
  const compact = (): void => {
    const next = open()
    let copy = new Uint8Array(64 * 1024)
    space.compact((h, off) => {
      if (copy.length < h.len) copy = new Uint8Array(h.cap)
      writeAt(next, readAt(fd, h.off, h.len, copy), off)
    })
    closeSync(fd)
    fd = next
  }
  return {
    put(bytes, h) {
      space.alloc(bytes.length, h)
      writeAt(fd, bytes, h.off)
      if (space.fragmented(slack)) compact()
    },
    get(h, into) {
      readAt(fd, h.off, h.len, into)
    },
    free(h) {
      space.release(h)
    },
    size: () => space.size,
    close() {
      if (closed) return
      closed = true
      closeSync(fd)
    },
  }
}
