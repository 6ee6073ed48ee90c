/**
 * `burnwatch replay`: sends recorded events to the ingest API in NDJSON batches at a target rate.
 * A batch the API refuses with 400 is reported (with its first error) and not retried; 429/503
 * and network errors are retried with backoff, which is safe because event_id deduplicates.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { readLineBatches } from '../backtest/lines.ts'

export interface ReplayOptions {
  eventsPath: string
  url: string
  /** events per second; 0 = as fast as the API accepts */
  rate: number
  key?: string
  batchSize?: number
  onProgress?: (sent: number, total: number) => void
}

export async function replay(o: ReplayOptions): Promise<{ sent: number; rejected: number; seconds: number; firstError: string | null }> {
  const t0 = performance.now()
  const lines: string[] = []
  for await (const batch of readLineBatches(o.eventsPath)) for (const l of batch) if (l.trim()) lines.push(l)
  const size = o.batchSize ?? (o.rate > 0 ? Math.max(1, Math.min(1000, Math.round(o.rate / 10))) : 1000)
  let sent = 0
  let rejected = 0
  let firstError: string | null = null
  for (let i = 0; i < lines.length; i += size) {
    const chunk = lines.slice(i, i + size)
    for (let attempt = 0; ; attempt++) {
      let res: Response
      try {
        res = await fetch(`${o.url}/v1/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-ndjson', ...(o.key ? { authorization: `Bearer ${o.key}` } : {}) },
          body: chunk.join('\n'),
        })
      } catch (err) {
        if (attempt >= 8) throw new Error(`cannot reach the ingest API at ${o.url}: ${(err as Error).message}; is \`burnwatch start\` running?`, { cause: err })
        await sleep(250 * 2 ** attempt)
        continue
      }
      const body = await res.text()
      if (res.status === 202) {
        sent += chunk.length
        break
      }
      if ((res.status === 429 || res.status >= 500) && attempt < 8) {
        await sleep(Number(res.headers.get('retry-after') ?? 0) * 1000 || 250 * 2 ** attempt)
        continue
      }
      rejected += chunk.length
      firstError ??= `HTTP ${res.status}: ${body.slice(0, 500)}`
      break
    }
    o.onProgress?.(sent + rejected, lines.length)
    if (o.rate > 0) {
      const due = t0 + ((sent + rejected) / o.rate) * 1000
      const wait = due - performance.now()
      if (wait > 0) await sleep(wait)
    }
  }
  return { sent, rejected, seconds: (performance.now() - t0) / 1000, firstError }
}
