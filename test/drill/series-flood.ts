/**
 * Drill: a flood of 100,000 new series names (issue 12). `burnwatch start` (embedded: in-process
 * bus, chDB) with caps of 1,000 series per team and 5,000 in all receives 100,000 events over
 * HTTP, each with a new endpoint name, as fast as two clients send them, and RSS is watched until
 * the flood's windows have closed and reached the detector (whose per-series state is the larger
 * part). Before the caps the process grew from 0.45 to 2.57 GB and never came back. Required: every request answered 202,
 * /healthz answering 200 throughout, RSS growth under FLOOD_RSS_CAP_MB, the overflow counted in
 * /metrics, active series within the cap, and every event stored once (raw rows keep their names).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from '../support/processes.ts'
import type { UsageEvent } from '../../schemas/usage-event.ts'
import { checkAggregatorTotals, expectedOf, freePort, log, realisticEvents, result, sendOverHttp, startStage, stopGracefully, tempDir, type DrillResult } from './lib.ts'

export const FLOOD_SERIES = 100_000
/** RSS growth allowed for the flood, MB (before the caps: +2,120 MB) */
export const FLOOD_RSS_CAP_MB = 400

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024

export async function seriesFlood(): Promise<DrillResult> {
  const dir = tempDir('flood')
  const port = await freePort()
  const config = join(dir, 'burnwatch.yaml')
  writeFileSync(config, 'defaults:\n  max_series_per_team: 1000\n  max_series: 5000\n')
  const children: Child[] = []
  try {
    const proc = await startStage('start', { BURNWATCH_DATA_DIR: dir, PORT: String(port), BURNWATCH_CONFIG: config, LOG_LEVEL: 'warn' })
    children.push(proc)
    const pid = proc.proc.pid!
    const url = `http://127.0.0.1:${port}`
    const template = realisticEvents('flood', 2000)
    // warm up with ordinary traffic, then measure
    const warm: UsageEvent[] = template.slice(0, 2000).map((e, i) => ({ ...e, event_id: `flood-warm-${i}`, timestamp: new Date(Date.now() - 60_000).toISOString() }))
    await sendOverHttp(() => url, warm, { batch: 500, concurrency: 2 })
    await sleep(2000)
    const before = rssOf(pid)
    const flood: UsageEvent[] = Array.from({ length: FLOOD_SERIES }, (_, i) => ({ ...template[i % template.length]!, team: `flood-team-${i % 10}`, endpoint: `POST /v1/generated-${i}`, event_id: `flood-${i}`, timestamp: new Date(Date.now() - 30_000).toISOString() }))
    let peak = before
    let healthFailures = 0
    let healthChecks = 0
    let sending = true
    const watch = (async () => {
      while (sending) {
        peak = Math.max(peak, rssOf(pid))
        healthChecks++
        const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status === 200).catch(() => false)
        if (!ok) healthFailures++
        await sleep(250)
      }
    })()
    const t0 = Date.now()
    const stats = await sendOverHttp(() => url, flood, { batch: 500, concurrency: 2 })
    const seconds = (Date.now() - t0) / 1000
    // the flood's windows close by idle advance (allowed lateness + the minute) and reach the detector,
    // whose per-series state is the larger part: watch RSS until they are all through
    const windowsOut = async () => Number(/^burnwatch_detector_windows_total (\d+)/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1] ?? 0)
    const before100s = Date.now()
    let prev = -1
    for (;;) {
      await sleep(5000)
      const n = await windowsOut()
      if ((n > 0 && n === prev && Date.now() - before100s > 100_000) || Date.now() - before100s > 180_000) break
      prev = n
    }
    sending = false
    await watch
    peak = Math.max(peak, rssOf(pid))
    const after = rssOf(pid)
    const metrics = await (await fetch(`${url}/metrics`)).text()
    const detectorWindows = await windowsOut()
    const active = Number(/^burnwatch_active_series (\d+)/m.exec(metrics)?.[1] ?? NaN)
    const overflow = [...metrics.matchAll(/^burnwatch_series_overflow_events_total\{cap="(\w+)"\} (\d+)/gm)].reduce((s, m) => s + Number(m[2]), 0)
    log(`series-flood: ${FLOOD_SERIES} new series in ${seconds.toFixed(1)} s; RSS ${(before / 1e6).toFixed(0)} → peak ${(peak / 1e6).toFixed(0)} MB, ${(after / 1e6).toFixed(0)} MB after; active series ${active}, overflow events ${overflow}`)
    await stopGracefully(proc, 'burnwatch start')
    const exp = expectedOf([...warm, ...flood])
    const c = await checkAggregatorTotals(dir, exp)
    const growthMb = (peak - before) / 1e6
    const notes = [
      `${FLOOD_SERIES} new series names in ${seconds.toFixed(1)} s over HTTP (${stats.requests} requests, ${stats.retries} retried); RSS ${(before / 1e6).toFixed(0)} MB → peak ${(peak / 1e6).toFixed(0)} MB (+${growthMb.toFixed(0)} MB, cap ${FLOOD_RSS_CAP_MB}); /healthz ${healthChecks - healthFailures}/${healthChecks} answered 200; active series ${active} (cap 5000); ${overflow} events counted in overflow series; ${detectorWindows} windows reached the detector`,
      ...c.notes,
    ]
    const ok = c.exact && growthMb < FLOOD_RSS_CAP_MB && healthFailures === 0 && active <= 5000 && overflow > 0 && stats.retries === 0
    return result('100,000 new series', { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost }, notes, ok)
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}
