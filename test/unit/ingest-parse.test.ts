// Pure parsing and validation of ingest batches: JSON object/array, NDJSON, all-or-nothing errors.
import { describe, expect, it } from 'vitest'
import { HttpError } from '../../services/ingest/http-error.ts'
import { parseBatch, parseJsonBatch, parseNdjson } from '../../services/ingest/parse.ts'
import { chunkRecords, invalidBatchMessage, parseSeriesKey, seriesKey, usageEventRecords, validateUsageEvents } from '../../shared/producer/index.ts'

const event = (over: Record<string, unknown> = {}) => ({
  event_id: 'e-1',
  timestamp: '2026-11-22T10:00:00.123Z',
  team: 'search',
  endpoint: 'POST /v1/summarize',
  model: 'gpt-4o-mini',
  input_tokens: 100,
  output_tokens: 20,
  ...over,
})

function httpError(fn: () => unknown): HttpError {
  try {
    fn()
  } catch (err) {
    if (err instanceof HttpError) return err
    throw err
  }
  throw new Error('expected an HttpError')
}

describe('parse', () => {
  it('takes one object or an array', () => {
    expect(parseJsonBatch(JSON.stringify(event())).items).toHaveLength(1)
    expect(parseJsonBatch(JSON.stringify([event(), event({ event_id: 'e-2' })])).items).toHaveLength(2)
    expect(parseJsonBatch('[]').items).toEqual([])
  })

  it('rejects malformed JSON naming what is wrong, and hints at NDJSON', () => {
    const e = httpError(() => parseJsonBatch('{"event_id": "x",'))
    expect(e.status).toBe(400)
    expect(e.body.error).toBe('malformed_body')
    expect(e.body.message).toMatch(/not valid JSON/)
    const nd = httpError(() => parseJsonBatch(`${JSON.stringify(event())}\n${JSON.stringify(event())}`))
    expect(nd.body.message).toMatch(/application\/x-ndjson/)
    expect(httpError(() => parseJsonBatch('42')).body.message).toMatch(/not number/)
    expect(httpError(() => parseJsonBatch('  ')).body.message).toMatch(/empty/)
  })

  it('parses NDJSON, skipping blank lines and keeping line numbers', () => {
    const text = `${JSON.stringify(event())}\r\n\n${JSON.stringify(event({ event_id: 'e-2' }))}\n`
    const b = parseBatch(text, 'application/x-ndjson')
    expect(b.items).toHaveLength(2)
    expect(b.lines).toEqual([1, 3])
  })

  it('names every malformed NDJSON line', () => {
    const e = httpError(() => parseNdjson(`${JSON.stringify(event())}\n{nope\n${JSON.stringify(event())}\n[1,`))
    expect(e.status).toBe(400)
    expect(e.body.message).toMatch(/^2 line\(s\).*first: line 2/)
    expect((e.body.errors as { line: number }[]).map((x) => x.line)).toEqual([2, 4])
    expect(httpError(() => parseNdjson('\n\n')).body.message).toMatch(/no events/)
  })
})

describe('validate (all-or-nothing)', () => {
  it('accepts a valid batch', () => {
    const r = validateUsageEvents([event(), event({ event_id: 'e-2', status: 'error' })], { strict: true })
    expect(r.ok).toBe(true)
  })

  it('reports index, path and message for every bad item', () => {
    const r = validateUsageEvents([event(), event({ input_tokens: -1 }), 7, event({ team: undefined, timestamp: 'yesterday' })], { strict: true })
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.invalid).toBe(3)
    expect(r.total).toBe(4)
    expect(r.errors).toEqual(
      expect.arrayContaining([
        { index: 1, path: 'input_tokens', message: expect.stringMatching(/≥ 0/) as unknown },
        { index: 2, path: '(root)', message: 'each event must be a JSON object, got a number' },
        { index: 3, path: 'team', message: expect.stringMatching(/^team is required/) as unknown },
        { index: 3, path: 'timestamp', message: expect.stringMatching(/ISO-8601/) as unknown },
      ]),
    )
    expect(invalidBatchMessage(r.invalid, r.total)).toBe('3 of 4 events are invalid; nothing was accepted. Fix them and resend the whole batch.')
  })

  it('rejects unknown fields when strict and drops them when lenient', () => {
    const strict = validateUsageEvents([event({ colour: 'red' })], { strict: true })
    expect(strict.ok).toBe(false)
    if (!strict.ok) expect(strict.errors[0]).toMatchObject({ index: 0, path: 'colour' })
    const lenient = validateUsageEvents([event({ colour: 'red' })], { strict: false })
    expect(lenient.ok).toBe(true)
    if (lenient.ok) expect(lenient.items[0]).not.toHaveProperty('colour')
  })
})

describe('series key and records', () => {
  it('is the JSON triple (team, endpoint, model) and round-trips any characters', () => {
    const s = { team: 'a"b', endpoint: 'POST /x\u0000y', model: 'm,1' }
    expect(seriesKey(s)).toBe(JSON.stringify(['a"b', 'POST /x\u0000y', 'm,1']))
    expect(parseSeriesKey(seriesKey(s))).toEqual(s)
    expect(parseSeriesKey('nope')).toBeNull()
    expect(parseSeriesKey('["a","b"]')).toBeNull()
  })

  it('keys records by series and chunks them under the byte budget', () => {
    const events = Array.from({ length: 50 }, (_, i) => event({ event_id: `e-${i}`, attributes: { pad: 'x'.repeat(1000) } }))
    const records = usageEventRecords(validateUsageEvents(events, { strict: true }).ok ? (events as never) : [])
    expect(records[0]!.key).toBe('["search","POST /v1/summarize","gpt-4o-mini"]')
    expect(JSON.parse(records[0]!.value)).toMatchObject({ event_id: 'e-0' })
    const chunks = chunkRecords(records, 10_000)
    expect(chunks.length).toBeGreaterThan(5)
    expect(chunks.flat()).toEqual(records)
  })
})
