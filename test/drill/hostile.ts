/**
 * Drill 5: hostile input at the ingest API and straight onto the usage.events topic.
 *   HTTP: >= 10,000 hostile items, each refused with 400 and an error naming its index and field,
 *   plus body-level attacks (oversized, invalid UTF-8, NaN/Infinity tokens, deep nesting, wrong
 *   content type) refused with 400/413/415 and a reason. Mixed batches are all-or-nothing: the
 *   valid neighbours of a bad item are refused with it, then resent alone and accepted.
 *   Kafka: hostile raw records interleaved with valid events: each one dead-lettered with a
 *   `reason` header, or stored as inert data when it is a valid event with odd content.
 *   Names carrying SQL or Slack markup are valid and stored verbatim.
 *   The ingest and aggregator processes stay up, /healthz answers 200, valid totals are exact.
 */
import { request } from 'node:http'
import type { Child } from '../support/processes.ts'
import type { UsageEvent } from '../../schemas/usage-event.ts'
import { seriesKey } from '../../shared/producer/series-key.ts'
import { alive, chdbTool, checkAggregatorTotals, ensureTopic, expectedOf, freePort, kafkaClient, log, prefix, readTopic, realisticEvents, result, sendOverHttp, stageEnv, startStage, stopGracefully, tempDir, topicsOf, waitForDrain, type DrillResult } from './lib.ts'

const SQL = `'; DROP TABLE usage_events; --`
const MARKUP = '<!channel> <@U0123ABC> *bold* <https://evil.example|click> `code`'

/** Hostile variations of a valid event; `field` is the path the 400 must name. */
function hostileItems(valid: () => Record<string, unknown>): { item: unknown; field: string }[] {
  const v = valid
  const future = new Date(Date.now() + 24 * 3_600_000).toISOString()
  const deep: Record<string, unknown> = {}
  let cur = deep
  for (let i = 0; i < 200; i++) {
    const next: Record<string, unknown> = {}
    cur.x = next
    cur = next
  }
  const many: Record<string, string> = {}
  for (let i = 0; i < 40; i++) many[`k${i}`] = 'v'
  return [
    { item: { ...v(), input_tokens: '100' }, field: 'input_tokens' },
    { item: { ...v(), output_tokens: true }, field: 'output_tokens' },
    { item: { ...v(), team: 42 }, field: 'team' },
    { item: { ...v(), endpoint: null }, field: 'endpoint' },
    { item: { ...v(), model: ['gpt-4o'] }, field: 'model' },
    { item: { ...v(), timestamp: 1_700_000_000_000 }, field: 'timestamp' },
    { item: { ...v(), timestamp: 'yesterday' }, field: 'timestamp' },
    { item: { ...v(), timestamp: '2026-13-45T25:61:00Z' }, field: 'timestamp' },
    { item: { ...v(), timestamp: '2026-11-22T10:00:00' }, field: 'timestamp' },
    { item: { ...v(), timestamp: future }, field: 'timestamp' },
    { item: { ...v(), timestamp: '9999-12-31T23:59:59Z' }, field: 'timestamp' },
    { item: { ...v(), timestamp: '1970-01-01T00:00:00Z' }, field: 'timestamp' },
    { item: { ...v(), timestamp: '1900-01-01T00:00:00Z' }, field: 'timestamp' },
    { item: { ...v(), timestamp: '0001-01-01T00:00:00Z' }, field: 'timestamp' },
    { item: { ...v(), input_tokens: 'NaN' }, field: 'input_tokens' },
    { item: { ...v(), output_tokens: 'Infinity' }, field: 'output_tokens' },
    { item: { ...v(), cost_usd: '-Infinity' }, field: 'cost_usd' },
    { item: { ...v(), latency_ms: 'NaN' }, field: 'latency_ms' },
    { item: { ...v(), input_tokens: -1 }, field: 'input_tokens' },
    { item: { ...v(), output_tokens: -1e9 }, field: 'output_tokens' },
    { item: { ...v(), input_tokens: 1e20 }, field: 'input_tokens' },
    { item: { ...v(), output_tokens: 2 ** 53 + 2 }, field: 'output_tokens' },
    { item: { ...v(), input_tokens: 1.5 }, field: 'input_tokens' },
    { item: { ...v(), cost_usd: -0.01 }, field: 'cost_usd' },
    { item: { ...v(), cost_usd: 1e300 }, field: 'cost_usd' },
    { item: { ...v(), gpu_seconds: -5 }, field: 'gpu_seconds' },
    { item: { ...v(), cache_read_tokens: 10_000_000 }, field: 'cache_read_tokens' },
    { item: { ...v(), unknown_field: 'x' }, field: 'unknown_field' },
    { item: { ...v(), __proto__: { admin: true }, constructor: { prototype: { polluted: 1 } } }, field: 'constructor' },
    { item: { ...v(), team: 'x'.repeat(129) }, field: 'team' },
    { item: { ...v(), endpoint: 'e'.repeat(100_000) }, field: 'endpoint' },
    { item: { ...v(), event_id: 'i'.repeat(129) }, field: 'event_id' },
    { item: { ...v(), event_id: '' }, field: 'event_id' },
    { item: { ...v(), attributes: { tier: 'v'.repeat(1025) } }, field: 'attributes.tier' },
    { item: { ...v(), attributes: many }, field: 'attributes' },
    { item: { ...v(), attributes: { tier: 7 } }, field: 'attributes.tier' },
    { item: { ...v(), attributes: deep }, field: 'attributes.x' },
    { item: { ...v(), status: 'maybe' }, field: 'status' },
    { item: { ...v(), batch: 'yes' }, field: 'batch' },
    { item: { ...v(), input_tokens: undefined }, field: 'input_tokens' },
    { item: { ...v(), team: SQL, input_tokens: `1; ${SQL}` }, field: 'input_tokens' },
    { item: { ...v(), endpoint: MARKUP, cost_usd: '<!channel>' }, field: 'cost_usd' },
    { item: { ...v(), timestamp: `2026-11-22T10:00:00Z${SQL}` }, field: 'timestamp' },
    { item: null, field: '' },
    { item: 42, field: '' },
    { item: 'a string', field: '' },
    { item: [v()], field: '' },
  ]
}

interface Resp {
  status: number
  body: string
}

function post(port: number, path: string, body: Buffer | string, headers: Record<string, string>): Promise<Resp> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { 'content-length': String(Buffer.byteLength(body)), ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      // a 413 may close the connection before the whole body was written
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') resolve({ status: -1, body: err.code })
      else reject(err)
    })
    req.end(body)
  })
}

async function healthz(port: number): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`)
  await res.arrayBuffer()
  return res.status
}

export async function hostileInput(brokers: string[]): Promise<DrillResult> {
  const p = prefix('hi')
  const topics = topicsOf(p)
  const port = await freePort()
  const ingestDir = tempDir('hi-ingest')
  const aggDir = tempDir('hi-agg')
  const children: Child[] = []
  const problems: string[] = []
  try {
    await ensureTopic(brokers, topics.events)
    const agg = await startStage('aggregate', stageEnv({ brokers, prefix: p, dataDir: aggDir }))
    children.push(agg)
    const ingest = await startStage('ingest', stageEnv({ brokers, prefix: p, dataDir: ingestDir, port }))
    children.push(ingest)

    const valid = realisticEvents('hi', 6000)
    // names carrying SQL and Slack markup are valid data: stored verbatim, never interpreted
    const inert: UsageEvent[] = [SQL, MARKUP, 'Robert"); DROP TABLE alerts;--', '{team:String}', '\\N', 'ünïcødé 🚀', 'tab\tand\nnewline'].map((team, i) => ({
      ...valid[i]!,
      event_id: `hi-inert-${i}`,
      team,
      endpoint: `${MARKUP} ${i}`,
      model: `${SQL}${i}`,
      attributes: { note: `${SQL} ${MARKUP}` },
    }))
    let n = 0
    const template = () => ({ ...(valid[n % valid.length] as unknown as Record<string, unknown>), event_id: `hi-hostile-${n++}` })

    // ---- HTTP: hostile items in batches; every item refused with its index and field
    let httpHostile = 0
    let httpRefusedWithField = 0
    const per = 50
    while (httpHostile < 10_000) {
      const variants = hostileItems(template)
      for (let i = 0; i < variants.length; i += per) {
        const chunk = variants.slice(i, i + per)
        const r = await post(port, '/v1/events', JSON.stringify(chunk.map((c) => c.item)), { 'content-type': 'application/json' })
        httpHostile += chunk.length
        if (r.status !== 400) {
          problems.push(`a hostile batch got ${r.status}: ${r.body.slice(0, 200)}`)
          continue
        }
        const errors = (JSON.parse(r.body) as { errors?: { index: number; path: string; message: string }[] }).errors ?? []
        for (const [j, c] of chunk.entries()) {
          const mine = errors.filter((e) => e.index === j)
          const named = mine.some((e) => (c.field === '' ? true : e.path === c.field || e.path.startsWith(`${c.field}.`) || e.message.includes(c.field)))
          if (mine.length && named) httpRefusedWithField++
          else if (problems.length < 20) problems.push(`item ${JSON.stringify(c.item)?.slice(0, 80)} refused without naming '${c.field}': ${JSON.stringify(mine).slice(0, 200)}`)
        }
      }
    }

    // ---- HTTP: body-level attacks, refused as a whole with a reason
    const bodyCases: { name: string; body: Buffer | string; type?: string; want: number[] }[] = [
      { name: 'NaN token', body: `[{"event_id":"x","timestamp":"2026-11-22T10:00:00Z","team":"t","endpoint":"e","model":"m","input_tokens":NaN,"output_tokens":1}]`, want: [400] },
      { name: 'Infinity token', body: `{"event_id":"x","timestamp":"2026-11-22T10:00:00Z","team":"t","endpoint":"e","model":"m","input_tokens":Infinity,"output_tokens":1}`, want: [400] },
      { name: '-Infinity token (NDJSON)', body: `{"event_id":"x","input_tokens":-Infinity}\n{"event_id":"y"}`, type: 'application/x-ndjson', want: [400] },
      { name: 'invalid UTF-8 bytes', body: Buffer.concat([Buffer.from('{"event_id":"x","team":"'), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), Buffer.from('"}')]), want: [400] },
      { name: 'oversized body (6 MiB)', body: `[${'"x",'.repeat(6 * 1024 * 256)}"x"]`, want: [413, -1] },
      { name: 'deeply nested arrays', body: '['.repeat(100_000) + ']'.repeat(100_000), want: [400] },
      { name: 'deeply nested objects', body: '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000), want: [400] },
      { name: 'empty body', body: '', want: [400] },
      { name: 'JSON null', body: 'null', want: [400] },
      { name: 'truncated JSON', body: '[{"event_id":"x",', want: [400] },
      { name: 'wrong content type', body: 'event_id=x', type: 'application/x-www-form-urlencoded', want: [415] },
      { name: 'SQL as body', body: SQL, want: [400] },
    ]
    let bodyRefused = 0
    for (const c of bodyCases) {
      const r = await post(port, '/v1/events', c.body, { 'content-type': c.type ?? 'application/json' })
      const reason = r.status === -1 || /"message":"[^"]{10,}/.test(r.body)
      if (c.want.includes(r.status) && reason) bodyRefused++
      else problems.push(`${c.name}: got ${r.status} ${r.body.slice(0, 160)}`)
    }

    // ---- HTTP: all-or-nothing with valid neighbours, then the fixed batch is accepted
    const neighbours = valid.slice(0, 3000)
    let mixedRefused = 0
    for (let i = 0; i < neighbours.length; i += 100) {
      const good = neighbours.slice(i, i + 100)
      const bad = hostileItems(template)[(i / 100) % 40]!.item
      const r = await post(port, '/v1/events', JSON.stringify([...good.slice(0, 50), bad, ...good.slice(50)]), { 'content-type': 'application/json' })
      if (r.status === 400 && r.body.includes('"index":50')) mixedRefused++
      else problems.push(`a mixed batch got ${r.status} ${r.body.slice(0, 160)}`)
    }
    const sent = await sendOverHttp(() => `http://127.0.0.1:${port}`, [...neighbours, ...inert], { batch: 100 })
    if (sent.accepted !== neighbours.length + inert.length) problems.push(`only ${sent.accepted} valid events accepted`)

    // ---- Kafka: hostile raw records interleaved with valid events
    const rest = valid.slice(3000)
    const producer = kafkaClient(brokers).producer({ idempotent: true, maxInFlightRequests: 1 })
    await producer.connect()
    let kafkaHostile = 0
    const storedInert: UsageEvent[] = []
    const raw = (i: number): { key: string | null; value: Buffer | string; stored?: UsageEvent } => {
      const base = rest[i % rest.length]!
      const id = `hi-k-${i}`
      switch (i % 12) {
        case 0:
          return { key: null, value: 'not json at all' }
        case 1:
          return { key: 'k', value: `{"event_id":"${id}","input_tokens":NaN}` }
        case 2:
          return { key: 'k', value: JSON.stringify({ ...base, event_id: id, input_tokens: 'Infinity' }) }
        case 3:
          return { key: 'k', value: JSON.stringify({ ...base, event_id: id, output_tokens: -7 }) }
        case 4:
          return { key: 'k', value: Buffer.concat([Buffer.from('{"event_id":'), Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from('}')]) }
        case 5:
          return { key: 'k', value: '['.repeat(20_000) + ']'.repeat(20_000) }
        case 6:
          return { key: 'k', value: JSON.stringify({ ...base, event_id: id, timestamp: '9999-01-01T00:00:00Z' }) }
        case 7:
          return { key: 'k', value: JSON.stringify({ ...base, event_id: id, team: 'x'.repeat(300_000) }) }
        case 8:
          return { key: 'k', value: '' }
        case 9:
          return { key: 'k', value: JSON.stringify({ ...base, event_id: id, input_tokens: 1e20 }) }
        case 10: {
          // a valid event with an unknown field: the aggregator is lenient (drops it) and stores the event
          const e = { ...base, event_id: id }
          return { key: seriesKey(e), value: JSON.stringify({ ...e, injected: SQL }), stored: e }
        }
        default:
          return { key: 'k', value: JSON.stringify([base]) }
      }
    }
    const dlqExpected: number[] = []
    for (let i = 0; i < rest.length; i += 200) {
      const messages: { key: string | null; value: Buffer | string }[] = []
      for (const e of rest.slice(i, i + 200)) messages.push({ key: seriesKey(e), value: JSON.stringify(e) })
      for (let j = 0; j < 200; j++) {
        const r = raw(kafkaHostile++)
        messages.push({ key: r.key, value: r.value })
        if (r.stored) storedInert.push(r.stored)
        else dlqExpected.push(kafkaHostile)
      }
      // under the broker's 1 MiB request limit: the oversized records go a few at a time
      let batch: typeof messages = []
      let bytes = 0
      for (const m of messages) {
        const size = typeof m.value === 'string' ? Buffer.byteLength(m.value) : m.value.length
        if (batch.length && bytes + size > 700_000) {
          await producer.send({ topic: topics.events, acks: -1, messages: batch })
          batch = []
          bytes = 0
        }
        batch.push(m)
        bytes += size
      }
      if (batch.length) await producer.send({ topic: topics.events, acks: -1, messages: batch })
    }
    await producer.disconnect()
    await waitForDrain(brokers, 'burnwatch-aggregator', topics.events, 120_000)

    const health = await healthz(port)
    const up = alive(ingest) && alive(agg)
    const dlq = await readTopic(brokers, topics.deadLetter)
    const withReason = dlq.filter((d) => (d.headers.reason ?? '').length > 5).length
    await stopGracefully(ingest, 'ingest')
    await stopGracefully(agg, 'aggregator')

    const all = [...neighbours, ...inert, ...rest, ...storedInert]
    const exp = expectedOf(all)
    const c = await checkAggregatorTotals(aggDir, exp)
    const verbatim = await chdbTool<{ team: string }[]>('query', { dataDir: aggDir, database: 'burnwatch', query: `SELECT team FROM usage_events WHERE event_id LIKE 'hi-inert-%' ORDER BY event_id` })
    if (verbatim.map((r) => r.team).join('|') !== inert.map((e) => e.team).join('|')) problems.push(`names not stored verbatim: ${JSON.stringify(verbatim).slice(0, 300)}`)
    if (health !== 200) problems.push(`/healthz answered ${health}`)
    if (!up) problems.push('a stage process exited')
    if (dlq.length !== dlqExpected.length) problems.push(`dead-letter topic has ${dlq.length} records, expected ${dlqExpected.length}`)
    if (withReason !== dlq.length) problems.push(`${dlq.length - withReason} dead letters without a reason header`)
    if (httpRefusedWithField !== httpHostile) problems.push(`${httpHostile - httpRefusedWithField} hostile HTTP items not refused with their field named`)
    const hostileTotal = httpHostile + bodyCases.length + kafkaHostile
    log(`hostile: ${httpHostile} items over HTTP (${httpRefusedWithField} refused naming the field), ${bodyRefused}/${bodyCases.length} body attacks refused, ${mixedRefused} mixed batches refused whole, ${kafkaHostile} raw Kafka records (${dlq.length} dead-lettered with a reason, ${storedInert.length} stored as inert data)`)
    return result(
      'hostile input',
      { eventsIn: exp.ids.size, eventsStored: c.stored, duplicates: c.duplicates, lost: c.lost },
      [`${hostileTotal} hostile records: ${httpRefusedWithField} HTTP items 400 with the field, ${bodyRefused} bodies 400/413/415, ${dlq.length} Kafka records dead-lettered with a reason, ${storedInert.length + inert.length} stored as inert data; processes up, /healthz ${health}`, ...problems.slice(0, 10), ...c.notes],
      c.exact && problems.length === 0 && hostileTotal >= 10_000,
    )
  } finally {
    for (const c of children) c.kill('SIGKILL')
  }
}
