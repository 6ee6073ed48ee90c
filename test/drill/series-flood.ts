/**
 * Drill `series-flood` (issue 12, `seriesFlood` below): the flood of 100,000 new series names with
 * Kafka and a kill -9 of the aggregator during it; the drill `series-flood-embedded`
 * (`seriesFloodEmbedded`) is the same flood into `burnwatch start`, which has no kill -9 because
 * the embedded bus loses acknowledged events on a crash by design.
 *
 * Embedded: a flood of 100,000 new series names (issue 12). `burnwatch start` (embedded: in-process
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
import { alive, checkAggregatorTotals, committedOffsets, ensureTopic, expectedOf, freePort, kafkaClient, killHard, log, prefix, realisticEvents, result, sendOverHttp, stageEnv, startStage, stopGracefully, tempDir, topicsOf, waitForDrain, waitUntil, type DrillResult } from './lib.ts'
import { groupLag } from '../../shared/bus/kafka.ts'

export const FLOOD_SERIES = 100_000
/** RSS growth allowed for the flood, MB (before the caps: +2,120 MB) */
export const FLOOD_RSS_CAP_MB = 400

const rssOf = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024

export async function seriesFloodEmbedded(): Promise<DrillResult> {
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
    return result('100,000 new series (embedded, no kill)', { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost }, notes, ok)
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}

const metric = (text: string, name: string) => Number(new RegExp(`^${name} (\\d+)`, 'm').exec(text)?.[1] ?? NaN)

/**
 * The flood with Kafka and a kill -9: ingest, aggregator and detector are stage processes on the
 * real broker (the aggregator on chDB), with the same caps (1,000 series per team, 5,000 in all).
 * Warm-up traffic, then 100,000 events over HTTP, each with a new endpoint name; when a third of
 * them is committed by the aggregator it is SIGKILLed and restarted (the acknowledged events are
 * in Kafka: a kill -9 loses nothing). RSS of the three processes is summed (the restarted
 * aggregator's in place of the killed one's) until the flood's windows have reached the detector.
 * Required: every request answered 202 with no retry, /healthz of the ingest 200 throughout, RSS
 * growth of the three under FLOOD_RSS_CAP_MB, active series within the cap, overflow counted, and
 * every event stored exactly once (0 lost, 0 doubled).
 */
export async function seriesFlood(brokers: string[]): Promise<DrillResult> {
  const p = prefix('sf')
  const topics = topicsOf(p)
  const dir = tempDir('sf-cfg')
  const aggDir = tempDir('sf-agg')
  const config = join(dir, 'burnwatch.yaml')
  writeFileSync(config, 'defaults:\n  max_series_per_team: 1000\n  max_series: 5000\n')
  const [port, aggMetrics, detMetrics] = [await freePort(), await freePort(), await freePort()]
  const children: Child[] = []
  const kadmin = kafkaClient(brokers).admin()
  try {
    await ensureTopic(brokers, topics.events)
    await kadmin.connect()
    const env = (dataDir: string, extra: Record<string, string> = {}) => stageEnv({ brokers, prefix: p, dataDir, config, extra: { LOG_LEVEL: 'warn', ...extra } })
    let agg = await startStage('aggregate', env(aggDir, { METRICS_PORT: String(aggMetrics) }))
    children.push(agg)
    const det = await startStage('detect', env(tempDir('sf-det'), { METRICS_PORT: String(detMetrics) }))
    children.push(det)
    const ingest = await startStage('ingest', env(tempDir('sf-ingest'), { PORT: String(port) }))
    children.push(ingest)
    const url = `http://127.0.0.1:${port}`
    const rssSafe = (c: Child) => {
      try {
        return alive(c) ? rssOf(c.proc.pid!) : 0
      } catch {
        return 0
      }
    }
    // per process, the restarted aggregator's in place of the killed one's
    const rssBy = () => ({ ingest: rssSafe(ingest), aggregator: rssSafe(agg), detector: rssSafe(det) })
    const rssNow = () => Object.values(rssBy()).reduce((a, b) => a + b, 0)
    type Role = keyof ReturnType<typeof rssBy>
    const peakBy: Record<Role, number> = { ingest: 0, aggregator: 0, detector: 0 }
    const notePeaks = () => {
      for (const [k, v] of Object.entries(rssBy()) as [Role, number][]) peakBy[k] = Math.max(peakBy[k], v)
    }
    const template = realisticEvents('sf', 2000)
    const warm: UsageEvent[] = template.slice(0, 2000).map((e, i) => ({ ...e, event_id: `sf-warm-${i}`, timestamp: new Date(Date.now() - 60_000).toISOString() }))
    await sendOverHttp(() => url, warm, { batch: 500, concurrency: 2 })
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 60_000)
    await sleep(2000)
    const before = rssNow()
    const beforeBy = rssBy()
    const flood: UsageEvent[] = Array.from({ length: FLOOD_SERIES }, (_, i) => ({ ...template[i % template.length]!, team: `flood-team-${i % 10}`, endpoint: `POST /v1/generated-${i}`, event_id: `sf-${i}`, timestamp: new Date(Date.now() - 30_000).toISOString() }))
    let peak = before
    let healthFailures = 0
    let healthChecks = 0
    let watching = true
    const watch = (async () => {
      while (watching) {
        peak = Math.max(peak, rssNow())
        notePeaks()
        healthChecks++
        const ok = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5000) }).then((r) => r.status === 200).catch(() => false)
        if (!ok) healthFailures++
        await sleep(250)
      }
    })()
    const t0 = Date.now()
    const sending = sendOverHttp(() => url, flood, { batch: 500, concurrency: 2 })
    sending.catch(() => {})
    await waitUntil('a third of the flood committed', async () => (await committedOffsets(brokers, 'burnwatch-aggregator', topics.events)) >= warm.length + FLOOD_SERIES / 3, 180_000, 100)
    const atKill = await committedOffsets(brokers, 'burnwatch-aggregator', topics.events)
    const rssAtKill = rssNow()
    await killHard(agg)
    log(`series-flood: aggregator SIGKILLed at ${atKill}/${warm.length + FLOOD_SERIES} committed (RSS of the three ${(rssAtKill / 1e6).toFixed(0)} MB)`)
    agg = await startStage('aggregate', env(aggDir, { METRICS_PORT: String(aggMetrics) }))
    children.push(agg)
    const stats = await sending
    const seconds = (Date.now() - t0) / 1000
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 180_000)
    // the flood's windows close by idle advance and reach the detector, whose per-series state is
    // the larger part: watch RSS until they are all through
    const windowsOut = async () => metric(await (await fetch(`http://127.0.0.1:${detMetrics}/metrics`)).text(), 'burnwatch_detector_windows_total')
    const from = Date.now()
    let prev = -1
    for (;;) {
      await sleep(5000)
      const n = await windowsOut()
      const drained = (await groupLag(kadmin, 'burnwatch-detector', topics.windows)) === 0
      if ((n > 0 && n === prev && drained && Date.now() - from > 100_000) || Date.now() - from > 180_000) break
      prev = n
    }
    watching = false
    await watch
    peak = Math.max(peak, rssNow())
    notePeaks()
    const after = rssNow()
    const growthBy = (Object.keys(peakBy) as Role[]).map((k) => `${k} ${(beforeBy[k] / 1e6).toFixed(0)} → ${(peakBy[k] / 1e6).toFixed(0)} MB`).join(', ')
    const stagesGrowthMb = (peakBy.aggregator - beforeBy.aggregator + peakBy.detector - beforeBy.detector) / 1e6
    const aggText = await (await fetch(`http://127.0.0.1:${aggMetrics}/metrics`)).text()
    const active = metric(aggText, 'burnwatch_active_series')
    const overflow = [...aggText.matchAll(/^burnwatch_series_overflow_events_total\{cap="(\w+)"\} (\d+)/gm)].reduce((s, m) => s + Number(m[2]), 0)
    const detectorWindows = await windowsOut()
    // where the RSS is: the V8 heap (used / reserved) and external memory of each stage, at the end
    const heapOf = async (port: number) => {
      const t = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()
      const mb = (name: string) => (metric(t, `burnwatch_nodejs_${name}`) / 1e6).toFixed(0)
      return `heap ${mb('heap_size_used_bytes')}/${mb('heap_size_total_bytes')} MB, external ${mb('external_memory_bytes')} MB`
    }
    const heaps = `aggregator ${await heapOf(aggMetrics)}; detector ${await heapOf(detMetrics)}`
    const stagesAlive = alive(agg) && alive(det) && alive(ingest)
    await stopGracefully(ingest, 'ingest')
    await stopGracefully(agg, 'aggregator')
    await stopGracefully(det, 'detector')
    const exp = expectedOf([...warm, ...flood])
    const c = await checkAggregatorTotals(aggDir, exp)
    const growthMb = (peak - before) / 1e6
    const notes = [
      `${FLOOD_SERIES} new series names in ${seconds.toFixed(1)} s over HTTP (${stats.requests} requests, ${stats.retries} retried); aggregator SIGKILLed at ${atKill}/${exp.ids.size} committed and restarted; RSS of ingest + aggregator + detector ${(before / 1e6).toFixed(0)} MB → peak ${(peak / 1e6).toFixed(0)} MB (+${growthMb.toFixed(0)} MB, cap ${FLOOD_RSS_CAP_MB}), ${(after / 1e6).toFixed(0)} MB after (peaks: ${growthBy}; aggregator + detector +${stagesGrowthMb.toFixed(0)} MB; at the end ${heaps}); /healthz ${healthChecks - healthFailures}/${healthChecks} answered 200; active series ${active} (cap 5000) after the restart; ${overflow} events counted in overflow series after the restart; ${detectorWindows} windows reached the detector`,
      ...c.notes,
    ]
    if (!stagesAlive) notes.push('a stage process exited')
    const ok = c.exact && growthMb < FLOOD_RSS_CAP_MB && healthFailures === 0 && active <= 5000 && overflow > 0 && stats.retries === 0 && stagesAlive
    return result('100,000 new series + kill -9 aggregator (Kafka)', { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost }, notes, ok)
  } finally {
    for (const x of children) x.kill('SIGKILL')
    await kadmin.disconnect().catch(() => {})
  }
}
