/**
 * Environment as a dimension, end to end on the real broker and engine: events of production,
 * staging and dev sent over HTTP, straight to Kafka with the producer SDK, and as OTLP spans
 * (deployment.environment.name mapped by the config) are stored with their environment, keyed
 * apart on Kafka, rolled up apart, reported apart (`burnwatch report` totals equal ClickHouse's
 * sums per environment), and the history the detector rebuilds its baselines from keeps them apart.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { Kafka, logLevel } from 'kafkajs'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { startStages, type RunningStages } from '../../services/cli/stages.ts'
import { createClickHouseAlertStore } from '../../services/detector/clickhouse-store.ts'
import { buildReport } from '../../services/report/run.ts'
import { loadBreakdown } from '../../services/dashboard/queries.ts'
import { OVERVIEW_SECTIONS, renderOverview } from '../../services/dashboard/views.ts'
import { fromPico, toPico } from '../../services/report/query.ts'
import { createUsageProducer, seriesKey } from '../../shared/producer/index.ts'
import { loadConfig } from '../../shared/config.ts'
import type { UsageEvent } from '../../schemas/index.ts'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { testLogger, uniquePrefix, waitFor } from '../support/pipeline.ts'

let running: RunningStages | null = null
afterAll(async () => {
  await running?.stop()
})

const SERIES = { team: 'envteam', endpoint: 'POST /v1/chat', model: 'gpt-4o-mini', provider: 'openai' }

describe('environment from HTTP, Kafka and OTLP to the report', () => {
  it('stores, keys, rolls up and reports each environment apart', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-env-'))
    writeFileSync(join(dir, 'burnwatch.yaml'), 'otlp:\n  environments: { stg: staging }\n')
    const brokers = inject('kafkaBrokers')
    const config = loadConfig({ ...testClickHouseEnv(inject('clickhouse')), KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: uniquePrefix(), PORT: '0', LOG_LEVEL: 'warn', BURNWATCH_CONFIG: join(dir, 'burnwatch.yaml') })
    running = await startStages(['ingest', 'aggregate'], config, testLogger(), { out: new Writable({ write: (_c, _e, cb) => cb() }) })
    const base = Math.floor(Date.now() / 60_000) * 60_000 - 20 * 60_000
    const run = randomBytes(3).toString('hex')
    const event = (i: number, environment: string | undefined): UsageEvent => ({
      event_id: `env-${run}-${environment ?? 'none'}-${i}`,
      timestamp: new Date(base + i * 7_000).toISOString(),
      ...SERIES,
      input_tokens: 1000 + i,
      output_tokens: 100,
      cost_usd: Number(((environment === 'staging' ? 3 : 1) * (0.001 + i / 1e6)).toFixed(9)),
      ...(environment ? { environment } : {}),
    })

    // HTTP: production (no field) and staging
    const http = [...Array.from({ length: 30 }, (_, i) => event(i, undefined)), ...Array.from({ length: 30 }, (_, i) => event(i, 'staging'))]
    const r = await fetch(`${running.ingestUrl!}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(http) })
    expect(r.status).toBe(202)
    // Kafka, with the producer SDK: dev
    const producer = createUsageProducer({ brokers, topic: config.kafka.topics.events })
    await producer.send(Array.from({ length: 20 }, (_, i) => event(i, 'dev')))
    await producer.close()
    // OTLP: deployment.environment.name "stg" is staging by the config
    const attr = (key: string, v: string | number) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } })
    const spans = Array.from({ length: 10 }, (_, i) => {
      const end = BigInt(base + i * 5_000) * 1_000_000n
      return { traceId: `${run}${'0'.repeat(26)}`, spanId: `${String(i).padStart(10, '0')}${run}`, name: 'chat', startTimeUnixNano: String(end - 1_000_000n), endTimeUnixNano: String(end), attributes: [attr('gen_ai.request.model', SERIES.model), attr('gen_ai.system', 'openai'), attr('gen_ai.usage.input_tokens', 500), attr('gen_ai.usage.output_tokens', 50), attr('burnwatch.endpoint', SERIES.endpoint)] }
    })
    const otlp = await fetch(`${running.ingestUrl!}/v1/traces`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ resourceSpans: [{ resource: { attributes: [attr('team', SERIES.team), attr('deployment.environment.name', 'stg')] }, scopeSpans: [{ spans }] }] }),
    })
    expect(await otlp.json()).toMatchObject({ accepted: 10 })

    const ch = running.runtime.clickhouse.client
    const stored = await waitFor('90 events stored', async () => {
      const rs = await ch.query({ query: `SELECT environment, count() AS n, toString(sum(cost_usd)) AS cost FROM usage_events WHERE team = {team:String} GROUP BY environment ORDER BY environment`, query_params: { team: SERIES.team }, format: 'JSONEachRow' })
      const rows = await rs.json<{ environment: string; n: string; cost: string }>()
      return rows.reduce((s, x) => s + Number(x.n), 0) >= 90 ? rows : null
    })
    expect(stored.map((x) => [x.environment, Number(x.n)])).toEqual([
      ['dev', 20],
      ['production', 30],
      ['staging', 40],
    ])

    // Kafka keys: one series per environment (production keeps the three-element key)
    const kafka = new Kafka({ clientId: 'it-env', brokers, logLevel: logLevel.NOTHING })
    const consumer = kafka.consumer({ groupId: `it-env-${run}` })
    await consumer.connect()
    await consumer.subscribe({ topic: config.kafka.topics.events, fromBeginning: true })
    const keys = new Map<string, string>()
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          const v = JSON.parse(message.value!.toString()) as UsageEvent
          keys.set(v.environment ?? 'production', message.key!.toString())
          if (keys.size === 3) resolve()
        },
      })
    })
    await consumer.disconnect()
    expect(Object.fromEntries(keys)).toEqual({
      production: seriesKey(SERIES),
      staging: JSON.stringify([SERIES.team, SERIES.endpoint, SERIES.model, 'staging']),
      dev: JSON.stringify([SERIES.team, SERIES.endpoint, SERIES.model, 'dev']),
    })

    // the report: per environment, equal to ClickHouse's sums
    const month = new Date(base).toISOString().slice(0, 7)
    const report = await buildReport(ch, config.file, { month, team: SERIES.team, format: 'csv' })
    const lines = report.text.trim().split('\n').slice(1).map((l) => l.split(','))
    expect(lines.map((l) => [l[1], Number(l[5]), fromPico(toPico(l[7]!))])).toEqual(stored.map((x) => [x.environment, Number(x.n), fromPico(toPico(x.cost))]))
    const focus = await buildReport(ch, config.file, { month, team: SERIES.team, format: 'focus' })
    for (const env of ['production', 'staging', 'dev']) expect(focus.text).toContain(`""environment"":""${env}""`)

    // the detector's restart history: one series per environment, never summed together
    const perEnv = new Map<string, number>()
    for await (const w of createClickHouseAlertStore(ch).streamWindowsSince(base - 60_000, base + 60 * 60_000, 60_000)) {
      if (w.team === SERIES.team) perEnv.set(w.environment ?? 'production', (perEnv.get(w.environment ?? 'production') ?? 0) + w.requests)
    }
    expect(Object.fromEntries(perEnv)).toEqual({ production: 30, staging: 40, dev: 20 })

    // the dashboard's environments, week over week
    const dash = (await loadBreakdown(ch, 'environment', Date.now())).filter((x) => x.team === SERIES.team)
    expect(Object.fromEntries(dash.map((x) => [x.environment, x.requests]))).toEqual({ production: 30, staging: 40, dev: 20 })
    const page = await renderOverview({ client: ch, file: config.file, now: Date.now() }, OVERVIEW_SECTIONS.filter((s) => s.id === 'environments'))
    expect(String(page)).toMatch(/<h2>Environments<\/h2>.*<td>envteam<\/td><td>staging<\/td>/s)
  })
})
