/**
 * Drills of the stage runner and of what an outside producer can send (issue 12), each against
 * the real broker, an aggregator process with its own chDB, and a kill -9 mid-way:
 *   kcat        live traffic from librdkafka producers (Debian's kcat): no key, and the series
 *               key through librdkafka's own partitioner, with each codec (none, gzip, snappy,
 *               lz4, zstd); every event stored once, every series-minute published once, whole.
 *   old-months  one batch of 500 events spread over 101 calendar months among normal traffic:
 *               those older than usage_events keeps are set aside with their reason, the rest is
 *               stored (in inserts of at most 50 months), and the partitions move on.
 *   fast-clock  one event from a clock 4 min 50 s fast, then normal live traffic: no event late,
 *               every window of the normal traffic published whole.
 */
import { spawn } from 'node:child_process'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Child } from '../support/processes.ts'
import type { Topics } from '../../shared/config.ts'
import type { UsageEvent } from '../../schemas/usage-event.ts'
import { seriesKey } from '../../shared/producer/series-key.ts'
import {
  checkAggregatorTotals,
  committedOffsets,
  chdbTool,
  ensureTopic,
  expectedOf,
  killHard,
  log,
  prefix,
  produceEvents,
  readTopic,
  realisticEvents,
  result,
  stageEnv,
  startStage,
  stopGracefully,
  tempDir,
  topicsOf,
  waitForDrain,
  waitUntil,
  type DrillResult,
} from './lib.ts'

const CODECS = ['none', 'gzip', 'snappy', 'lz4', 'zstd'] as const

/** Sends lines through Debian's kcat (librdkafka): `key\tvalue` lines when keyed, values only otherwise. */
async function kcat(brokers: string[], topic: string, lines: string[], o: { codec: (typeof CODECS)[number]; keyed: boolean }): Promise<void> {
  const args = ['-P', '-b', brokers.join(','), '-t', topic, '-z', o.codec, '-X', 'acks=all', ...(o.keyed ? ['-K', '\t'] : [])]
  await new Promise<void>((resolve, reject) => {
    const p = spawn('kcat', args, { stdio: ['pipe', 'ignore', 'pipe'] })
    let err = ''
    p.stderr.on('data', (d: Buffer) => (err += d.toString()))
    p.on('error', (e) => reject(new Error(`kcat could not start (${e.message}); install Debian's kcat: apt-get install kcat`)))
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`kcat -z ${o.codec} exited ${String(code)}: ${err.slice(-1000)}`))))
    p.stdin.end(lines.join('\n') + '\n')
  })
}

/** Events stored with the late flag (their window had closed before they came). */
const lateEvents = async (dir: string) => Number((await chdbTool<{ late: number }[]>('query', { dataDir: dir, database: 'burnwatch', query: 'SELECT countIf(late) AS late FROM usage_events' }))[0]?.late ?? 0)

interface WindowCheck {
  windows: number
  partial: number
  republishedDifferent: number
  notes: string[]
}

/** Every window on cost.windows must hold all the events of its series-minute, whatever partition they came by. */
async function checkWindowsWhole(brokers: string[], topic: string, events: readonly UsageEvent[], late: number): Promise<WindowCheck> {
  const expected = new Map<string, number>()
  const seen = new Set<string>()
  for (const e of events) {
    if (seen.has(e.event_id)) continue
    seen.add(e.event_id)
    const t = Date.parse(e.timestamp)
    const k = `${seriesKey(e)}@${new Date(t - (t % 60_000)).toISOString()}`
    expected.set(k, (expected.get(k) ?? 0) + 1)
  }
  const first = new Map<string, number>()
  let partial = 0
  let republishedDifferent = 0
  for (const r of await readTopic(brokers, topic)) {
    const w = JSON.parse(r.value) as { team: string; endpoint: string; model: string; window_start: string; requests: number; late_events: number }
    const k = `${seriesKey(w)}@${w.window_start}`
    const prev = first.get(k)
    if (prev !== undefined) {
      // a window re-closed after the kill -9 is published again: the detector keeps the first, it must be the whole one
      if (prev !== w.requests + w.late_events) republishedDifferent++
      continue
    }
    first.set(k, w.requests + w.late_events)
    if (w.requests !== (expected.get(k) ?? 0)) partial++
  }
  const notes = [`${first.size} windows published, ${partial} partial${republishedDifferent ? `, ${republishedDifferent} published again with other counts` : ''}${late ? `, ${late} late events` : ''}`]
  return { windows: first.size, partial, republishedDifferent, notes }
}

/** An aggregator process, killed with SIGKILL once `killWhen` holds, then restarted; returns after the topic drained. */
async function withKilledAggregator(brokers: string[], p: string, dir: string, children: Child[], send: () => Promise<void>, killAfterCommitted: number, settleMs = 0): Promise<{ atKill: number }> {
  const topics = topicsOf(p)
  let agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: dir }))
  children.push(agg)
  const sending = send()
  await waitUntil(`${killAfterCommitted} records committed`, async () => (await committedOffsets(brokers, 'burnwatch-aggregator', topics.events)) >= killAfterCommitted, 120_000, 50)
  const atKill = await committedOffsets(brokers, 'burnwatch-aggregator', topics.events)
  await killHard(agg)
  log(`aggregator killed with SIGKILL at ${atKill} committed`)
  agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: dir }))
  children.push(agg)
  await sending
  await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 180_000)
  // live windows close by idle advance (allowed lateness + the window): give them the time
  if (settleMs) await sleep(settleMs)
  await stopGracefully(agg, 'aggregator')
  return { atKill }
}

interface AggregatorDrill {
  topics: Topics
  dir: string
  /** runs `send` against an aggregator process killed with SIGKILL at `killAfterCommitted`, restarted, drained */
  run(send: () => Promise<void>, killAfterCommitted: number, settleMs?: number): Promise<{ atKill: number }>
}

/** A drill's own topics (usage.events with `partitions`), aggregator data dir and processes, cleaned up after. */
async function aggregatorDrill(brokers: string[], label: string, partitions: number, body: (d: AggregatorDrill) => Promise<DrillResult>): Promise<DrillResult> {
  const p = prefix(label)
  const topics = topicsOf(p)
  const dir = tempDir(`${label}-agg`)
  const children: Child[] = []
  try {
    await ensureTopic(brokers, topics.events, partitions)
    return await body({ topics, dir, run: (send, kill, settle) => withKilledAggregator(brokers, p, dir, children, send, kill, settle) })
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}

export function kcatProducers(brokers: string[]): Promise<DrillResult> {
  return aggregatorDrill(brokers, 'kc', 3, async ({ topics, dir, run }) => {
    const template = realisticEvents('kc', 3000)
    const events: UsageEvent[] = []
    // 60 s of live traffic, 200 events a second, each second by another librdkafka producer:
    // codec by turn, keyed with the series key (through librdkafka's own partitioner) or no key
    let producers = 0
    const send = async () => {
      const started = Date.now()
      const sends: Promise<void>[] = []
      for (let s = 0; s < 60; s++) {
        const due = started + s * 1000
        if (due > Date.now()) await sleep(due - Date.now())
        // 8 variants of each demo series' endpoint: a few dozen series over the three partitions
        const batch = Array.from({ length: 200 }, (_, i) => {
          const e = template[(s * 200 + i) % template.length]!
          return { ...e, endpoint: `${e.endpoint} #${i % 8}`, event_id: `kc-${s}-${i}`, timestamp: new Date(Date.now() - 300 + i).toISOString() }
        })
        events.push(...batch)
        const codec = CODECS[s % CODECS.length]!
        const keyed = Math.floor(s / CODECS.length) % 2 === 1
        producers++
        sends.push(kcat(brokers, topics.events, batch.map((e) => (keyed ? `${seriesKey(e)}\t${JSON.stringify(e)}` : JSON.stringify(e))), { codec, keyed }))
      }
      await Promise.all(sends)
    }
    const { atKill } = await run(send, 4000, 100_000)
    const exp = expectedOf(events)
    const c = await checkAggregatorTotals(dir, exp)
    const late = await lateEvents(dir)
    const w = await checkWindowsWhole(brokers, topics.windows, events, late)
    const minutes = new Set(events.map((e) => `${seriesKey(e)}@${e.timestamp.slice(0, 16)}`)).size
    return result(
      'kcat: no key, own partitioner, 5 codecs',
      { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost },
      [`${producers} kcat producers (${CODECS.join('/')}, keyed through librdkafka's partitioner or no key); aggregator killed at ${atKill} committed`, ...w.notes, `${minutes} series-minutes sent`, ...c.notes],
      c.exact && late === 0 && w.partial === 0 && w.republishedDifferent === 0 && w.windows === minutes,
    )
  })
}

export function oldMonths(brokers: string[]): Promise<DrillResult> {
  return aggregatorDrill(brokers, 'om', 3, async ({ topics, dir, run }) => {
    await ensureTopic(brokers, topics.deadLetter)
    const normal = realisticEvents('om', 16_000)
    // one batch of 500 events spread over 101 calendar months, ending now (one of the API's valid requests)
    const now = Date.now()
    const spread: UsageEvent[] = Array.from({ length: 500 }, (_, i) => {
      const d = new Date(now)
      d.setUTCMonth(d.getUTCMonth() - (i % 101), 1)
      const ts = Math.min(now - 60_000, d.getTime() + (i % 27) * 3_600_000)
      return { ...normal[i % normal.length]!, event_id: `om-spread-${i}`, timestamp: new Date(ts).toISOString() }
    })
    const retentionMs = 90 * 86_400_000
    const tooOld = spread.filter((e) => Date.parse(e.timestamp) < now - retentionMs + 3_600_000)
    const kept = [...normal, ...spread.filter((e) => !tooOld.includes(e))]
    const send = async () => {
      await produceEvents(brokers, topics.events, normal.slice(0, 6000), { chunk: 500, ratePerSec: 4000 })
      await produceEvents(brokers, topics.events, spread, { chunk: 500 })
      await produceEvents(brokers, topics.events, normal.slice(6000), { chunk: 500, ratePerSec: 4000 })
    }
    const { atKill } = await run(send, 3000)
    const exp = expectedOf(kept)
    const c = await checkAggregatorTotals(dir, exp)
    const dlq = await readTopic(brokers, topics.deadLetter)
    const dlqIds = new Set(dlq.map((r) => (JSON.parse(r.value) as { event_id: string }).event_id))
    const withReason = dlq.filter((r) => /older than usage_events keeps/.test(r.headers.reason ?? '')).length
    const missingFromDlq = tooOld.filter((e) => !dlqIds.has(e.event_id)).length
    const notes = [`${tooOld.length} of the 500 events over 101 months are older than usage_events keeps: ${dlqIds.size} set aside on the dead-letter topic (${withReason} records with the reason), the other ${spread.length - tooOld.length} stored; aggregator killed at ${atKill} committed`, ...c.notes]
    if (missingFromDlq) notes.push(`${missingFromDlq} too-old events neither stored nor dead-lettered`)
    return result('100-month batch', { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost + missingFromDlq }, notes, c.exact && missingFromDlq === 0 && withReason >= tooOld.length)
  })
}

export function fastClock(brokers: string[]): Promise<DrillResult> {
  // one partition: the fast event and the normal traffic share their watermark
  return aggregatorDrill(brokers, 'fc', 1, async ({ topics, dir, run }) => {
    const template = realisticEvents('fc', 2000)
    const events: UsageEvent[] = []
    const send = async () => {
      const fast = { ...template[0]!, event_id: 'fc-fast', timestamp: new Date(Date.now() + 290_000).toISOString() }
      events.push(fast)
      await produceEvents(brokers, topics.events, [fast])
      // then 40 s of live traffic, 100 events a second, each stamped when it is sent
      for (let s = 0; s < 40; s++) {
        const batch = Array.from({ length: 100 }, (_, i) => ({ ...template[(s * 100 + i) % template.length]!, event_id: `fc-${s}-${i}`, timestamp: new Date(Date.now() - 200 + i).toISOString() }))
        events.push(...batch)
        await produceEvents(brokers, topics.events, batch)
        await sleep(1000)
      }
    }
    const { atKill } = await run(send, 2000, 100_000)
    const exp = expectedOf(events)
    const c = await checkAggregatorTotals(dir, exp)
    const late = await lateEvents(dir)
    const normalOnly = events.filter((e) => e.event_id !== 'fc-fast')
    const w = await checkWindowsWhole(brokers, topics.windows, normalOnly, late)
    const covered = w.windows > 0
    return result(
      '+4 min 50 s clock',
      { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost },
      [`one event 4 min 50 s ahead, then 4000 live events over 40 s; aggregator killed at ${atKill} committed`, ...w.notes, ...c.notes],
      c.exact && late === 0 && w.partial === 0 && covered,
    )
  })
}
