/**
 * Drill 2: the Kafka broker is killed with SIGKILL under load and restarted. Clients keep
 * sending over HTTP (a 503 or a timeout resends the same batch); the ingest process's producer
 * and the aggregator process's consumer must recover by themselves; totals stay exact.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { LocalKafka } from '../../infra/kafka/local-broker.ts'
import type { Child } from '../support/processes.ts'
import { alive, checkAggregatorTotals, expectedOf, freePort, log, prefix, realisticEvents, result, sendOverHttp, stageEnv, startStage, stopGracefully, tempDir, topicsOf, waitForDrain, waitUntil, type DrillResult } from './lib.ts'

export async function brokerRestart(brokers: string[], broker: LocalKafka): Promise<DrillResult> {
  const p = prefix('kb')
  const topics = topicsOf(p)
  const port = await freePort()
  const ingestDir = tempDir('kb-ingest')
  const aggDir = tempDir('kb-agg')
  const children: Child[] = []
  try {
    const agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: aggDir }))
    children.push(agg)
    const ingest = await startStage('ingest', stageEnv({ brokers, prefix: p, dataDir: ingestDir, port }))
    children.push(ingest)
    const events = realisticEvents('kb', 24_000)
    let accepted = 0
    const sending = sendOverHttp(() => `http://127.0.0.1:${port}`, events, { batch: 200, concurrency: 3, ratePerSec: 1500, onProgress: (n) => (accepted = n) })
    await waitUntil('a quarter of the events accepted', () => accepted >= events.length / 4, 60_000, 20)
    const atKill = accepted
    await broker.kill()
    log(`broker: Kafka killed with SIGKILL after ${atKill}/${events.length} events acknowledged`)
    await sleep(5000)
    const t0 = Date.now()
    await broker.restart()
    log(`broker: Kafka restarted in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    const stats = await sending
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 180_000)
    const stagesAlive = alive(ingest) && alive(agg)
    await stopGracefully(ingest, 'ingest')
    await stopGracefully(agg, 'aggregator')
    const exp = expectedOf(events)
    const c = await checkAggregatorTotals(aggDir, exp)
    const notes = [`killed after ${atKill} acknowledged, down 5 s; client retries ${stats.retries} (${JSON.stringify(stats.errors)})`, ...c.notes]
    if (!stagesAlive) notes.push('a stage process exited')
    return result('broker SIGKILL + restart', { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost }, notes, c.exact && stagesAlive)
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}
