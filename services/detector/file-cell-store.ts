/**
 * The cell store's file adapter: cold endpoint cells as bytes in one scratch file, read and
 * written in place with positioned I/O (pread/pwrite; the detector core stays synchronous). The
 * file is unlinked as soon as it is open: nothing is left behind by a crash, and nothing needs
 * it after one (a restarted detector rebuilds its state from ClickHouse). Its pages sit in the
 * kernel's page cache, which the kernel can write out and reclaim; the process holds none of them.
 */
import { closeSync, mkdirSync, openSync, readSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { SpaceAllocator, type CellStore } from './core/cells.ts'

export interface FileCellStore extends CellStore {
  close(): void
}

export function createFileCellStore(dir: string): FileCellStore {
  mkdirSync(dir, { recursive: true })
  const path = join(dir, `detector-cells-${process.pid}-${Date.now()}.bin`)
  const fd = openSync(path, 'w+', 0o600)
  unlinkSync(path)
  const space = new SpaceAllocator()
  let closed = false
  return {
    put(bytes, prev) {
      const h = space.alloc(bytes.length, prev)
      let done = 0
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, h.off + done)
      return h
    },
    get(h) {
      // a buffer of its own: the decoded typed arrays may be views of it (node:v8's deserializer)
      const b = Buffer.allocUnsafeSlow(h.len)
      let done = 0
      while (done < h.len) {
        const n = readSync(fd, b, done, h.len - done, h.off + done)
        if (n === 0) throw new Error(`detector cell store: ${h.len} bytes at offset ${h.off} not found in the scratch file (read ${done})`)
        done += n
      }
      return b
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
