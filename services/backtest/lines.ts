/** Reads a text file as batches of lines, in large chunks (faster than readline for NDJSON). */
import { createReadStream } from 'node:fs'

export async function* readLineBatches(path: string, onBytes?: (n: number) => void): AsyncGenerator<string[]> {
  let rest = ''
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    onBytes?.(Buffer.byteLength(chunk as string))
    const lines = (rest + (chunk as string)).split('\n')
    rest = lines.pop() ?? ''
    yield lines
  }
  if (rest) yield [rest]
}

/** Reads a text file as chunks of whole lines (each chunk ends at a newline, except the last). */
export async function* readLineChunks(path: string, onBytes?: (n: number) => void): AsyncGenerator<string> {
  let rest = ''
  for await (const chunk of createReadStream(path, { encoding: 'utf8', highWaterMark: 1 << 20 })) {
    onBytes?.(Buffer.byteLength(chunk as string))
    const text = rest + (chunk as string)
    const cut = text.lastIndexOf('\n') + 1
    rest = text.slice(cut)
    if (cut > 0) yield text.slice(0, cut)
  }
  if (rest) yield rest
}
