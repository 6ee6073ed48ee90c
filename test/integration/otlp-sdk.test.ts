/**
 * The real OpenTelemetry JS SDK and both of its OTLP/HTTP exporters (protobuf and JSON) against
 * the real ingest server, Kafka broker and ClickHouse engine: spans without a team attribute are
 * routed by service.name, deployment.environment.name becomes the environment, reasoning tokens
 * keep their own column, every span is stored and priced; unusable spans are answered with an
 * OTLP partial success in both encodings, and malformed protobuf with a google.rpc.Status.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { OTLPTraceExporter as ProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto'
import { OTLPTraceExporter as JsonExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace'
import { startStages, type RunningStages } from '../../services/cli/stages.ts'
import { createPricer } from '../../services/aggregator/pricing.ts'
import { decodeOtlpResponse } from '../../services/ingest/otlp-proto.ts'
import { loadConfig } from '../../shared/config.ts'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { testLogger, uniquePrefix, waitFor } from '../support/pipeline.ts'

let running: RunningStages | null = null
afterAll(async () => {
  await running?.stop()
})

const CONFIG = `
teams:
  - name: search
prices:
  - model: bw-otel-model
    input: 1
    output: 4
otlp:
  services:
    - service_name: answers-svc
      team: search
  environments:
    stg: staging
`

/** gen_ai attributes of one chat call, without any Burnwatch attribute */
const chat = (model: string, i: number) => ({
  'gen_ai.operation.name': 'chat',
  'gen_ai.system': 'openai',
  'gen_ai.request.model': model,
  'gen_ai.usage.input_tokens': 1000 + i,
  'gen_ai.usage.output_tokens': 500,
  'gen_ai.usage.reasoning.output_tokens': 200,
})

/** Sends spans through an exporter with the SDK; resolves with the export result codes (0 = success). */
async function emit(exporter: SpanExporter, environment: string, spans: { name: string; attributes: Record<string, string | number> }[]): Promise<number[]> {
  const codes: number[] = []
  const recording: SpanExporter = {
    export: (s, done) => exporter.export(s, (r) => (codes.push(r.code), done(r))),
    shutdown: () => exporter.shutdown(),
    forceFlush: () => exporter.forceFlush?.() ?? Promise.resolve(),
  }
  const provider = new TracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'answers-svc', 'deployment.environment.name': environment }),
    spanProcessors: [new SimpleSpanProcessor({ exporter: recording })],
  })
  const tracer = provider.getTracer('burnwatch-it')
  for (const s of spans) tracer.startSpan(s.name, { attributes: s.attributes }).end()
  await provider.forceFlush()
  await provider.shutdown()
  return codes
}

describe('OpenTelemetry SDK exporters → /v1/traces → Kafka → ClickHouse', () => {
  it('stores and prices spans from the protobuf and the JSON exporter, routed by service.name', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-otlp-'))
    writeFileSync(join(dir, 'burnwatch.yaml'), CONFIG)
    const config = loadConfig({ ...testClickHouseEnv(inject('clickhouse')), KAFKA_BROKERS: inject('kafkaBrokers').join(','), KAFKA_TOPIC_PREFIX: uniquePrefix(), PORT: '0', LOG_LEVEL: 'warn', BURNWATCH_CONFIG: join(dir, 'burnwatch.yaml') })
    running = await startStages(['ingest', 'aggregate'], config, testLogger(), { out: new Writable({ write: (_c, _e, cb) => cb() }) })
    const url = `${running.ingestUrl!}/v1/traces`

    const protoSpans = [...Array.from({ length: 4 }, (_, i) => ({ name: 'chat bw-otel-model', attributes: chat('bw-otel-model', i) })), { name: 'chat gpt-4o-mini', attributes: chat('gpt-4o-mini', 0) }]
    const jsonSpans = Array.from({ length: 3 }, (_, i) => ({ name: 'chat bw-otel-model', attributes: chat('bw-otel-model', 10 + i) }))
    expect(await emit(new ProtoExporter({ url }), 'stg', protoSpans)).toEqual([0, 0, 0, 0, 0])
    expect(await emit(new JsonExporter({ url }) as unknown as SpanExporter, 'production', jsonSpans)).toEqual([0, 0, 0])

    const ch = running.runtime.clickhouse.client
    type Row = { team: string; environment: string; model: string; input_tokens: number; output_tokens: number; reasoning_tokens: number; cost_usd: string; cost_source: string; service: string }
    const rows = await waitFor('8 spans stored', async () => {
      const rs = await ch.query({ query: 'SELECT team, environment, model, input_tokens, output_tokens, reasoning_tokens, toString(cost_usd) AS cost_usd, cost_source, service FROM usage_events ORDER BY environment, model, input_tokens', format: 'JSONEachRow' })
      const r = await rs.json<Row>()
      return r.length >= 8 ? r : null
    })
    expect(rows).toHaveLength(8)
    expect(rows.map((r) => [r.environment, r.model])).toEqual([
      ...Array.from({ length: 3 }, () => ['production', 'bw-otel-model']),
      ...Array.from({ length: 4 }, () => ['staging', 'bw-otel-model']),
      ['staging', 'gpt-4o-mini'],
    ])
    const pricer = createPricer(config.file)
    for (const r of rows) {
      expect(r).toMatchObject({ team: 'search', service: 'answers-svc', output_tokens: 500 })
      expect(Number(r.reasoning_tokens)).toBe(200)
      const expected = pricer.price({ event_id: 'x', timestamp: '', team: 'search', endpoint: 'x', model: r.model, provider: 'openai', input_tokens: Number(r.input_tokens), output_tokens: 500 })
      expect(r.cost_source).toBe(expected.source)
      expect(Number(r.cost_usd)).toBeCloseTo(expected.cost, 12)
      expect(Number(r.cost_usd)).toBeGreaterThan(0)
    }
    // the override: (1000 + i) input tokens at $1/M and 500 output tokens at $4/M
    expect(Number(rows[3]!.cost_usd)).toBeCloseTo(1000e-6 + 2000e-6, 12)
    expect(rows[7]!.cost_source).toBe('catalog')
  })

  it('answers unusable spans with an OTLP partial success in protobuf and JSON, and bad protobuf with a Status', async () => {
    const url = `${running!.ingestUrl!}/v1/traces`
    const memory = new InMemorySpanExporter()
    const provider = new TracerProvider({ resource: resourceFromAttributes({ 'service.name': 'unmapped-svc' }), spanProcessors: [new SimpleSpanProcessor({ exporter: memory })] })
    const tracer = provider.getTracer('burnwatch-it')
    tracer.startSpan('chat ok', { attributes: { ...chat('bw-otel-model', 0), 'burnwatch.team': 'search' } }).end()
    // no team anywhere: service.name unmapped and no default_team
    tracer.startSpan('chat no team', { attributes: chat('bw-otel-model', 1) }).end()
    // more reasoning tokens than output tokens
    tracer.startSpan('chat bad', { attributes: { ...chat('bw-otel-model', 2), 'burnwatch.team': 'search', 'gen_ai.usage.reasoning.output_tokens': 900 } }).end()
    tracer.startSpan('http GET', { attributes: { 'http.route': '/x' } }).end()
    await provider.forceFlush()
    const spans: ReadableSpan[] = memory.getFinishedSpans()
    expect(spans).toHaveLength(4)

    const pb = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: Buffer.from(ProtobufTraceSerializer.serializeRequest(spans as never)!) })
    expect(pb.status).toBe(200)
    expect(pb.headers.get('content-type')).toBe('application/x-protobuf')
    const decoded = decodeOtlpResponse(new Uint8Array(await pb.arrayBuffer()))
    expect(decoded.partialSuccess?.rejectedSpans).toBe('2')
    expect(decoded.partialSuccess?.errorMessage).toMatch(/2 of 3 gen_ai spans were rejected.*team is required.*otlp\.services/)

    const js = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(JsonTraceSerializer.serializeRequest(spans as never)!) })
    expect(js.status).toBe(200)
    const body = (await js.json()) as { partialSuccess: { rejectedSpans: string; errorMessage: string }; accepted: number; ignored_spans: number; errors: { path: string }[] }
    expect(body).toMatchObject({ partialSuccess: { rejectedSpans: '2' }, accepted: 1, ignored_spans: 1 })
    expect(body.errors.map((e) => e.path)).toEqual(['team', 'reasoning_tokens'])

    const bad = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/x-protobuf' }, body: new Uint8Array([10, 200, 1, 2]) })
    expect(bad.status).toBe(400)
    expect(bad.headers.get('content-type')).toBe('application/x-protobuf')
    await provider.shutdown()
  })
})
