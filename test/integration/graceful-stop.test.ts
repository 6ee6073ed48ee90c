/**
 * A graceful stop that cannot drain in time says how many acknowledged events it could not store
 * (issue 12). The embedded pipeline (`burnwatch start`: in-process bus, chDB) runs with its
 * `usage_events` table refusing every INSERT, the way ClickHouse refuses writes to a table with
 * too many parts (max_parts_in_total = 0: TOO_MANY_PARTS, retriable, so the aggregator retries);
 * N events are acknowledged over HTTP; the stop under a short deadline must log exactly N. Then
 * the table accepts writes again and a second stop drains: all N are stored.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { startStages, stopWithin, type RunningStages } from '../../services/cli/stages.ts'
import { loadConfig } from '../../shared/config.ts'
import { createLogger } from '../../shared/logger.ts'
import { openClickHouse } from '../../shared/clickhouse/client.ts'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { makeEvent } from '../support/events.ts'
import { waitFor } from '../support/pipeline.ts'

let running: RunningStages | null = null
afterAll(async () => {
  await running?.stop()
})

describe('graceful stop past its deadline', () => {
  it('logs the number of acknowledged events it could not store', async () => {
    const env = testClickHouseEnv(inject('clickhouse'))
    // the embedded mode: no KAFKA_BROKERS (in-process bus); no loopback server (chDB in this process)
    const config = loadConfig({ ...env, BURNWATCH_DATA_DIR: env.BURNWATCH_DATA_DIR ?? mkdtempSync(join(tmpdir(), 'bw-stop-')), BURNWATCH_EMBEDDED_SERVER: '0', PORT: '0', LOG_LEVEL: 'info' })
    expect(config.kafka.brokers).toBeNull()
    const lines: string[] = []
    const logger = createLogger({ level: 'info', destination: { write: (s: string) => void lines.push(s) } })
    running = await startStages(['ingest', 'aggregate'], config, logger, { out: new Writable({ write: (_c, _e, cb) => cb() }) })
    const ch = running.runtime.clickhouse.client
    await ch.command({ query: 'ALTER TABLE usage_events MODIFY SETTING max_parts_in_total = 0' })
    const N = 437
    const events = Array.from({ length: N }, (_, i) => makeEvent(i, { event_id: `stop-${i}` }))
    for (let i = 0; i < N; i += 100) {
      const res = await fetch(`${running.ingestUrl}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: events.slice(i, i + 100).map((e) => JSON.stringify(e)).join('\n') })
      expect(res.status).toBe(202)
    }
    // the aggregator has fetched them and is retrying the refused INSERT
    await waitFor('an insert refused', () => lines.some((l) => /TOO_MANY_PARTS|Too many parts|252/.test(l)), 30_000)
    const stop = await stopWithin(running, 2000, logger)
    expect(stop).toEqual({ stopped: false, unstoredEvents: N })
    const said = lines.map((l) => JSON.parse(l) as { level: number; msg: string; unstoredEvents?: number }).filter((l) => l.msg.startsWith('shutdown deadline passed'))
    expect(said).toHaveLength(1)
    expect(said[0]!.unstoredEvents).toBe(N)
    expect(said[0]!.msg).toContain(`${N} acknowledged events could not be stored and are lost`)
    expect(said[0]!.level).toBe(50)

    // the table accepts writes again: the stop in progress drains and stores every event
    await ch.command({ query: 'ALTER TABLE usage_events RESET SETTING max_parts_in_total' })
    const again = await stopWithin(running, 60_000, logger)
    expect(again).toEqual({ stopped: true })
    running = null
    const h = await openClickHouse(config.clickhouse)
    try {
      const rs = await h.client.query({ query: "SELECT count() AS n, uniqExact(event_id) AS k FROM usage_events WHERE startsWith(event_id, 'stop-')", format: 'JSONEachRow' })
      const [t] = await rs.json<{ n: number; k: number }>()
      expect({ n: Number(t?.n), k: Number(t?.k) }).toEqual({ n: N, k: N })
    } finally {
      await h.close()
    }
  })
})
