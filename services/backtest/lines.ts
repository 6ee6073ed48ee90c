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

