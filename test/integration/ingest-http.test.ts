// The HTTP ingest API against the real Kafka broker (test/global-setup.ts provides 'kafkaBrokers'):
// what is acknowledged is on the topic, keyed by series, exactly once per request; what is refused
// leaves nothing behind. Each test gets its own topics.
import { retrying } from '../../shared/retry.ts'
import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { Kafka, logLevel, type Admin } from 'kafkajs'
import { pino, type Logger } from 'pino'
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest'
import { createIngestServer, type IngestServer } from '../../services/ingest/server.ts'
import { createKafkaBus } from '../../shared/bus/kafka.ts'
import type { Bus, BusProducer } from '../../shared/bus/port.ts'
import { ConfigFileSchema, topicNames, type AppConfig, type IngestKey, type Topics } from '../../shared/config.ts'
import { createRegistry } from '../../shared/metrics.ts'
import { seriesKey } from '../../shared/producer/index.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[]
  }
}

const brokers = inject('kafkaBrokers')
const silent = pino({ level: 'silent' })
const kafka = new Kafka({ clientId: 'burnwatch-it-ingest', brokers, logLevel: logLevel.NOTHING, retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 2000 } })
let admin: Admin

beforeAll(async () => {
  admin = kafka.admin()
  await admin.connect()
})
afterAll(async () => {
  await admin?.disconnect()
})

const event = (i: number, over: Record<string, unknown> = {}) => ({
  event_id: `evt-${i}-${randomBytes(3).toString('hex')}`,
  timestamp: new Date(Date.now() - 60_000).toISOString(),
  team: 'search',
  endpoint: i % 2 ? 'POST /v1/summarize' : 'support-bot',
  model: 'gpt-4o-mini',
  input_tokens: 100 + i,
  output_tokens: 20,
  ...over,
})

interface Harness {
  url: string
  topics: Topics
  server: IngestServer
  registry: ReturnType<typeof createRegistry>
}

const cleanups: (() => Promise<void>)[] = []
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!()
})

function config(topics: Topics, over: { bodyLimitBytes?: number; ingestKeys?: IngestKey[]; strict?: boolean } = {}): Pick<AppConfig, 'http' | 'ingestKeys' | 'file' | 'kafka'> {
  return {
    http: { port: 0, host: '127.0.0.1', bodyLimitBytes: over.bodyLimitBytes ?? 5 * 1024 * 1024, metricsPort: null },
    ingestKeys: over.ingestKeys ?? [],
    file: ConfigFileSchema.parse({ defaults: { strict_events: over.strict ?? true } }),
    kafka: { brokers, clientId: 'burnwatch-it-ingest', topics },
  }
}

async function harness(over: Parameters<typeof config>[1] & { bus?: (real: Bus) => Bus; logger?: Logger } = {}): Promise<Harness> {
  const topics = topicNames(`t${randomBytes(5).toString('hex')}.`)
  const real = createKafkaBus({ brokers, clientId: 'burnwatch-it-ingest', logger: silent })
  await real.ensureTopics([{ topic: topics.events, partitions: 3 }, { topic: topics.deployments, partitions: 1 }])
  const registry = createRegistry()
  const server = createIngestServer({ bus: over.bus ? over.bus(real) : real, config: config(topics, over), logger: over.logger ?? silent, registry, sendTimeoutMs: 20_000 })
  const { url } = await server.start()
  cleanups.push(async () => {
    await server.stop()
    await real.stop()
    await admin.deleteTopics({ topics: [topics.events, topics.deployments] }).catch(() => {})
  })
  return { url, topics, server, registry }
}

/** Records on the topic right now (high watermark sum: exact for a non-transactional producer). */
async function countOn(topic: string): Promise<number> {
  // a topic created a moment ago can answer "not the leader" while its leader settles: retriable, retried
  const offsets = await retrying(() => admin.fetchTopicOffsets(topic), { maxTimeout: 1000, signal: AbortSignal.timeout(30_000) })
  return offsets.reduce((s, p) => s + Number(p.high) - Number(p.low), 0)
}

async function readAll(topic: string): Promise<{ key: string; value: Record<string, unknown>; partition: number }[]> {
  const expected = await countOn(topic)
  const consumer = kafka.consumer({ groupId: `it-ingest-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 100 })
  const seen: { key: string; value: Record<string, unknown>; partition: number }[] = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${seen.length}/${expected} records of ${topic}`)), 30_000)
      if (expected === 0) {
        clearTimeout(timer)
        resolve()
      }
      void consumer.run({
        eachMessage: async ({ message, partition }) => {
          seen.push({ key: message.key?.toString() ?? '', value: JSON.parse(message.value?.toString() ?? 'null') as Record<string, unknown>, partition })
          if (seen.length >= expected) {
            clearTimeout(timer)
            resolve()
          }
        },
      })
    })
  } finally {
    await consumer.disconnect()
  }
  return seen
}

const post = (url: string, body: string | Uint8Array, headers: Record<string, string> = { 'content-type': 'application/json' }) => fetch(url, { method: 'POST', headers, body })
const json = async (r: Response) => (await r.json()) as Record<string, unknown> & { errors?: Record<string, unknown>[] }

describe('ingest HTTP API → Kafka', () => {
  it('accepts one object, an array and NDJSON; each event lands once, keyed by series', async () => {
    const h = await harness()
    const one = event(0)
    const array = [event(1), event(2), event(3)]
    const nd = [event(4), event(5), event(6, { team: 'billing' }), event(7)]

    const r1 = await post(`${h.url}/v1/events`, JSON.stringify(one))
    expect(r1.status).toBe(202)
    expect(await json(r1)).toEqual({ accepted: 1 })
    const r2 = await post(`${h.url}/v1/events`, JSON.stringify(array))
    expect(await json(r2)).toEqual({ accepted: 3 })
    const r3 = await post(`${h.url}/v1/events`, nd.map((e) => JSON.stringify(e)).join('\n') + '\n', { 'content-type': 'application/x-ndjson; charset=utf-8' })
    expect(r3.status).toBe(202)
    expect(await json(r3)).toEqual({ accepted: 4 })

    // 202 came after acks=all: the records are already there, exactly 8 of them.
    expect(await countOn(h.topics.events)).toBe(8)
    const records = await readAll(h.topics.events)
    const sent = [one, ...array, ...nd]
    expect(records.map((r) => r.value.event_id).sort()).toEqual(sent.map((e) => e.event_id).sort())
    for (const r of records) {
      const e = sent.find((x) => x.event_id === r.value.event_id)!
      expect(r.key).toBe(seriesKey(e))
      expect(r.value).toEqual(e)
    }
    // one series, one partition
    const partitionOf = new Map<string, number>()
    for (const r of records) expect(partitionOf.set(r.key, partitionOf.get(r.key) ?? r.partition).get(r.key)).toBe(r.partition)

    const metrics = await (await fetch(`${h.url}/metrics`)).text()
    expect(metrics).toMatch(/^burnwatch_events_received_total 8$/m)
    expect(metrics).toMatch(/burnwatch_ingest_request_duration_seconds_count\{route="\/v1\/events",status="202"\} 3/)
  })

  it('refuses a whole batch with one bad item: 400 with index, path and message, nothing on the topic', async () => {
    const h = await harness()
    const batch = [event(0), event(1), event(2, { input_tokens: 'many' }), event(3)]
    const r = await post(`${h.url}/v1/events`, JSON.stringify(batch))
    expect(r.status).toBe(400)
    const body = await json(r)
    expect(body.error).toBe('invalid_events')
    expect(body.message).toBe('1 of 4 events are invalid; nothing was accepted. Fix them and resend the whole batch.')
    expect(body.errors).toEqual([{ index: 2, path: 'input_tokens', message: expect.stringMatching(/input_tokens must be a number/) as unknown }])

    const nd = [event(0), event(1, { colour: 'red' })].map((e) => JSON.stringify(e)).join('\n')
    const r2 = await post(`${h.url}/v1/events`, nd, { 'content-type': 'application/x-ndjson' })
    expect(r2.status).toBe(400)
    expect((await json(r2)).errors).toEqual([{ index: 1, line: 2, path: 'colour', message: expect.stringMatching(/unknown field/) as unknown }])

    const r3 = await post(`${h.url}/v1/events`, `${JSON.stringify(event(0))}\n{"event_id": oops}\n`, { 'content-type': 'application/x-ndjson' })
    expect(r3.status).toBe(400)
    expect((await json(r3)).message).toMatch(/line 2, not valid JSON/)
    const r4 = await post(`${h.url}/v1/events`, '{"event_id": ')
    expect(r4.status).toBe(400)
    expect((await json(r4)).message).toMatch(/not valid JSON/)

    expect(await countOn(h.topics.events)).toBe(0)
    const metrics = await (await fetch(`${h.url}/metrics`)).text()
    expect(metrics).toMatch(/burnwatch_events_rejected_total\{reason="invalid"\} 6/)
  })

  it('lenient mode (per request, or by config) drops unknown fields', async () => {
    const h = await harness()
    const e = event(0, { colour: 'red' })
    expect((await post(`${h.url}/v1/events`, JSON.stringify(e))).status).toBe(400)
    expect((await post(`${h.url}/v1/events?mode=lenient`, JSON.stringify(e))).status).toBe(202)
    expect((await post(`${h.url}/v1/events?mode=sloppy`, JSON.stringify(e))).status).toBe(400)
    const [rec] = await readAll(h.topics.events)
    expect(rec?.value).not.toHaveProperty('colour')
    expect(rec?.value.event_id).toBe(e.event_id)

    const lenient = await harness({ strict: false })
    expect((await post(`${lenient.url}/v1/events`, JSON.stringify(e))).status).toBe(202)
    expect((await post(`${lenient.url}/v1/events?mode=strict`, JSON.stringify(e))).status).toBe(400)
  })

  it('requires a known key (401) bound to the event teams (403), without echoing the key', async () => {
    const keys = [{ key: 'search-key-0123456789abcdef', keyEnv: 'SEARCH_INGEST_KEY', teams: ['search'] }]
    const h = await harness({ ingestKeys: keys })
    const body = JSON.stringify([event(0), event(1, { team: 'billing' })])
    const missing = await post(`${h.url}/v1/events`, body)
    expect(missing.status).toBe(401)
    expect(missing.headers.get('www-authenticate')).toMatch(/^Bearer/)
    const wrong = await post(`${h.url}/v1/events`, body, { 'content-type': 'application/json', authorization: 'Bearer guessed-key-zzzzzzzzzzzz' })
    expect(wrong.status).toBe(401)
    expect(await wrong.text()).not.toContain('guessed-key')

    const auth = { 'content-type': 'application/json', authorization: `Bearer ${keys[0]!.key}` }
    const forbidden = await post(`${h.url}/v1/events`, body, auth)
    expect(forbidden.status).toBe(403)
    const f = await json(forbidden)
    expect(f.message).toMatch(/item 1 is for team 'billing'/)
    expect(JSON.stringify(f)).not.toContain(keys[0]!.key)
    expect((await post(`${h.url}/v1/deployments`, JSON.stringify({ deployment_id: 'd1', team: 'billing', service: 's', timestamp: new Date().toISOString() }), auth)).status).toBe(403)
    expect(await countOn(h.topics.events)).toBe(0)

    expect((await post(`${h.url}/v1/events`, JSON.stringify([event(0), event(1)]), auth)).status).toBe(202)
    expect(await countOn(h.topics.events)).toBe(2)
  })

  it('logs one line per rejected request, with counts and never the key or the body', async () => {
    const lines: string[] = []
    const logger = pino({ level: 'info' }, { write: (l: string) => void lines.push(l) })
    const keys = [{ key: 'search-key-0123456789abcdef', keyEnv: 'SEARCH_INGEST_KEY', teams: ['search'] }]
    const h = await harness({ ingestKeys: keys, logger })
    const auth = { 'content-type': 'application/json', authorization: `Bearer ${keys[0]!.key}` }
    await post(`${h.url}/v1/events`, JSON.stringify([event(0, { endpoint: 'secret-endpoint-name' }), event(1, { input_tokens: -1 })]), auth)
    await post(`${h.url}/v1/events`, '[]', { 'content-type': 'application/json', authorization: 'Bearer not-a-key-at-all-xyz' })
    const rejected = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'ingest request rejected')
    expect(rejected).toHaveLength(2)
    expect(rejected[0]).toMatchObject({ route: '/v1/events', status: 400, error: 'invalid_events', items: 2, invalid: 1, key: 'SEARCH_INGEST_KEY' })
    expect(rejected[1]).toMatchObject({ status: 401, error: 'unauthorized' })
    const all = lines.join('\n')
    for (const secret of [keys[0]!.key, 'not-a-key-at-all', 'secret-endpoint-name']) expect(all).not.toContain(secret)
  })

  it('answers 413 past the body limit (declared or streamed, also after gunzip), 415, 404 and 405', async () => {
    const h = await harness({ bodyLimitBytes: 4096 })
    const big = JSON.stringify(Array.from({ length: 40 }, (_, i) => event(i)))
    const r = await post(`${h.url}/v1/events`, big)
    expect(r.status).toBe(413)
    expect((await json(r)).message).toMatch(/limit of 4096 bytes/)
    const stream = new ReadableStream<Uint8Array>({
      start(c) {
        for (let i = 0; i < 10; i++) c.enqueue(new TextEncoder().encode(' '.repeat(1000)))
        c.close()
      },
    })
    const chunked = await fetch(`${h.url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: stream, duplex: 'half' } as RequestInit)
    expect(chunked.status).toBe(413)
    const bomb = await post(`${h.url}/v1/events`, gzipSync(Buffer.from(`[${' '.repeat(100_000)}]`)), { 'content-type': 'application/json', 'content-encoding': 'gzip' })
    expect(bomb.status).toBe(413)
    const gz = await post(`${h.url}/v1/events`, gzipSync(Buffer.from(JSON.stringify([event(0)]))), { 'content-type': 'application/json', 'content-encoding': 'gzip' })
    expect(gz.status).toBe(202)

    const text = await post(`${h.url}/v1/events`, JSON.stringify(event(0)), { 'content-type': 'text/plain' })
    expect(text.status).toBe(415)
    expect((await json(text)).message).toMatch(/application\/x-ndjson/)
    const nf = await fetch(`${h.url}/v2/nothing`)
    expect(nf.status).toBe(404)
    expect(await json(nf)).toMatchObject({ error: 'not_found' })
    const wrongMethod = await fetch(`${h.url}/v1/events`)
    expect(wrongMethod.status).toBe(405)
    expect(await countOn(h.topics.events)).toBe(1)
  })

  it('sends a batch larger than one Kafka request in chunks', async () => {
    const h = await harness()
    const events = Array.from({ length: 3000 }, (_, i) => event(i, { attributes: { pad: 'x'.repeat(500) } }))
    const body = events.map((e) => JSON.stringify(e)).join('\n')
    expect(body.length).toBeGreaterThan(1_500_000)
    const r = await post(`${h.url}/v1/events`, body, { 'content-type': 'application/x-ndjson' })
    expect(await json(r)).toEqual({ accepted: 3000 })
    expect(await countOn(h.topics.events)).toBe(3000)
  })

  it('maps OTLP/HTTP JSON gen_ai spans to events, rejects unusable spans by partial success, and takes protobuf', async () => {
    const h = await harness()
    const attr = (key: string, v: string | number) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } })
    const end = BigInt(Date.now() - 30_000) * 1_000_000n
    const span = (spanId: string, attrs: unknown[], status: Record<string, unknown> = {}) => ({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId, name: 'chat gpt-4o', startTimeUnixNano: String(end - 900_000_000n), endTimeUnixNano: String(end), attributes: attrs, status })
    const llm = [attr('gen_ai.system', 'openai'), attr('gen_ai.request.model', 'gpt-4o'), attr('gen_ai.usage.input_tokens', 900), attr('gen_ai.usage.output_tokens', 50), attr('burnwatch.endpoint', 'POST /v1/answer')]
    const req = {
      resourceSpans: [
        {
          resource: { attributes: [attr('service.name', 'answers'), attr('team', 'search'), attr('deployment.id', 'rel-7')] },
          scopeSpans: [{ spans: [span('b7ad6b7169203331', llm), span('00f067aa0ba902b7', [attr('http.route', '/v1/answer')]), span('00f067aa0ba902b8', llm, { code: 2 })] }],
        },
      ],
    }
    const r = await post(`${h.url}/v1/traces`, JSON.stringify(req))
    expect(r.status).toBe(200)
    expect(await json(r)).toEqual({ accepted: 2, ignored_spans: 1 })
    const recs = await readAll(h.topics.events)
    expect(recs).toHaveLength(2)
    const ok = recs.find((x) => x.value.event_id === '0af7651916cd43dd8448eb211c80319c:b7ad6b7169203331')!
    expect(ok.key).toBe(seriesKey({ team: 'search', endpoint: 'POST /v1/answer', model: 'gpt-4o' }))
    expect(ok.value).toMatchObject({ service: 'answers', deployment_id: 'rel-7', provider: 'openai', input_tokens: 900, output_tokens: 50, status: 'ok', latency_ms: 900 })
    expect(recs.find((x) => x.value.event_id !== ok.value.event_id)?.value.status).toBe('error')

    const bad = { resourceSpans: [{ resource: { attributes: [] }, scopeSpans: [{ spans: [span('1111111111111111', llm)] }] }] }
    const rb = await post(`${h.url}/v1/traces`, JSON.stringify(bad))
    expect(rb.status).toBe(200)
    const partial = await json(rb)
    expect(partial.partialSuccess).toEqual({ rejectedSpans: '1', errorMessage: expect.stringMatching(/burnwatch\.team/) as unknown })
    expect(partial.errors).toEqual([{ path: 'team', span: 'resourceSpans[0].scopeSpans[0].spans[0]', message: expect.stringMatching(/burnwatch\.team/) as unknown }])

    // protobuf: one empty ResourceSpans is a valid request with nothing in it
    const pb = await post(`${h.url}/v1/traces`, new Uint8Array([10, 0]), { 'content-type': 'application/x-protobuf' })
    expect(pb.status).toBe(200)
    expect(new Uint8Array(await pb.arrayBuffer())).toEqual(new Uint8Array([]))
    expect(await countOn(h.topics.events)).toBe(2)
  })

  it('publishes deployment markers keyed by team', async () => {
    const h = await harness()
    const marker = { deployment_id: 'rel-8', team: 'search', service: 'answers', timestamp: new Date().toISOString(), version: '1.4.0', commit: 'abc123' }
    const r = await post(`${h.url}/v1/deployments`, JSON.stringify(marker))
    expect(r.status).toBe(202)
    expect(await json(r)).toEqual({ accepted: 1 })
    const bad = await post(`${h.url}/v1/deployments`, JSON.stringify({ ...marker, url: 'not a url' }))
    expect(bad.status).toBe(400)
    expect((await json(bad)).errors?.[0]).toMatchObject({ index: 0, path: 'url' })
    const [rec] = await readAll(h.topics.deployments)
    expect(rec).toMatchObject({ key: 'search', value: marker })
  })

  it('answers 503 with Retry-After when the bus does not acknowledge', async () => {
    const failing = (real: Bus): Bus => ({
      ...real,
      async producer(): Promise<BusProducer> {
        return {
          async send() {
            throw new Error('KafkaJSNumberOfRetriesExceeded: broker down')
          },
          async stop() {},
        }
      },
    })
    const h = await harness({ bus: failing })
    const r = await post(`${h.url}/v1/events`, JSON.stringify([event(0), event(1)]))
    expect(r.status).toBe(503)
    expect(r.headers.get('retry-after')).toBe('5')
    expect((await json(r)).error).toBe('bus_unavailable')
    expect(await (await fetch(`${h.url}/metrics`)).text()).toMatch(/burnwatch_events_rejected_total\{reason="bus_unavailable"\} 2/)
  })

  it('stop() lets in-flight requests finish before it resolves, is idempotent, and /healthz answers', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const slow = (real: Bus): Bus => ({
      ...real,
      async producer() {
        const p = await real.producer()
        return {
          async send(topic, messages) {
            await gate
            await p.send(topic, messages)
          },
          stop: () => p.stop(),
        }
      },
    })
    const h = await harness({ bus: slow })
    expect(await json(await fetch(`${h.url}/healthz`))).toEqual({ status: 'ok' })
    const inFlight = post(`${h.url}/v1/events`, JSON.stringify(event(0)))
    await new Promise((r) => setTimeout(r, 100))
    let stopped = false
    const stopping = h.server.stop().then(() => (stopped = true))
    await new Promise((r) => setTimeout(r, 100))
    expect(stopped).toBe(false)
    release()
    expect((await inFlight).status).toBe(202)
    await Promise.all([stopping, h.server.stop()])
    expect(await countOn(h.topics.events)).toBe(1)
    await expect(fetch(`${h.url}/healthz`)).rejects.toThrow()
  })
})
