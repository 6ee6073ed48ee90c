/**
 * Looking at a chart the way a person would: decode the PNG (pngjs) and find where its colours
 * are. Used to check that the break is inside the picture, not only that a file exists.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PNG } from 'pngjs'

export interface Picture {
  width: number
  height: number
  /** RGBA, row by row */
  data: Buffer
}

export function decodePng(bytes: Buffer): Picture {
  expect8BytesSignature(bytes)
  const png = PNG.sync.read(bytes)
  return { width: png.width, height: png.height, data: png.data }
}

function expect8BytesSignature(bytes: Buffer) {
  if (!bytes.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))) throw new Error('not a PNG: bad signature')
}

const hex = (c: string) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16))

/** Pixels within `tolerance` (per channel) of the colour `#rrggbb`, as [x, y]. */
export function pixelsOf(p: Picture, color: string, tolerance = 40): [number, number][] {
  const [r, g, b] = hex(color) as [number, number, number]
  const out: [number, number][] = []
  for (let y = 0; y < p.height; y++) {
    for (let x = 0; x < p.width; x++) {
      const i = (y * p.width + x) * 4
      if (Math.abs(p.data[i]! - r) <= tolerance && Math.abs(p.data[i + 1]! - g) <= tolerance && Math.abs(p.data[i + 2]! - b) <= tolerance) out.push([x, y])
    }
  }
  return out
}

/** Where test pictures go for a person to open: BURNWATCH_ARTIFACTS_DIR, else a folder in the temp dir. */
export function artifactsDir(): string {
  const dir = process.env.BURNWATCH_ARTIFACTS_DIR || join(tmpdir(), 'burnwatch-artifacts')
  mkdirSync(dir, { recursive: true })
  return dir
}

export function writeArtifact(name: string, data: Buffer): string {
  const path = join(artifactsDir(), name)
  writeFileSync(path, data)
  return path
}

/**
 * What the chart shows around its change point: the red change-point rule's column (the tallest
 * run of that colour), and the series' line (its colour) before and after it, as mean pixel rows
 * (a smaller row is higher on the picture, i.e. a larger value).
 */
export function readChart(p: Picture, colors: { change: string; series: string }) {
  const red = pixelsOf(p, colors.change, 30)
  const byColumn = new Map<number, number>()
  for (const [x] of red) byColumn.set(x, (byColumn.get(x) ?? 0) + 1)
  const [changeX, changeHeight] = [...byColumn].sort((a, b) => b[1] - a[1])[0] ?? [NaN, 0]
  const line = pixelsOf(p, colors.series, 30)
  const meanRow = (pts: [number, number][]) => (pts.length ? pts.reduce((s, [, y]) => s + y, 0) / pts.length : NaN)
  const before = line.filter(([x]) => x < changeX - 8)
  const after = line.filter(([x]) => x > changeX + 8)
  return { changeX, changeHeight, seriesBefore: { pixels: before.length, meanRow: meanRow(before) }, seriesAfter: { pixels: after.length, meanRow: meanRow(after) } }
}
