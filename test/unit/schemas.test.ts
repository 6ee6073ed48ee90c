import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { UsageEventStrict, UsageEventLenient, DeploymentMarker, WindowRecord, AlertRecord, fieldErrors } from '../../schemas/index.ts'
import { jsonSchemas } from '../../schemas/json.ts'

const good = {
  event_id: 'evt-1',
  timestamp: '2026-11-22T10:00:00.123Z',
  team: 'search',
  endpoint: 'POST /v1/summarize',
  model: 'gpt-4o-mini',
  input_tokens: 1200,
  output_tokens: 300,
}

function errorsOf(input: unknown, schema = UsageEventStrict) {
  const r = schema.safeParse(input)
  expect(r.success).toBe(false)
  return r.success ? [] : fieldErrors(r.error)
}

describe('usage event v1', () => {
  it('accepts a minimal and a full event', () => {
    expect(UsageEventStrict.safeParse(good).success).toBe(true)
    const full = { ...good, provider: 'openai', service: 'api', deployment_id: 'd-1', cache_read_tokens: 100, cache_write_tokens: 50, batch: true, cost_usd: 0.01, gpu_seconds: 1.5, latency_ms: 320, status: 'error', attributes: { tier: 'pro' } }
    expect(UsageEventStrict.parse(full)).toEqual(full)
  })

  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['missing event_id', { event_id: undefined }, 'event_id', /required/],
    ['empty team', { team: '' }, 'team', /team must not be empty/],
    ['oversized endpoint', { endpoint: 'x'.repeat(257) }, 'endpoint', /longer than 256/],
    ['model not a string', { model: 42 }, 'model', /model must be a string/],
    ['timestamp without zone', { timestamp: '2026-11-22T10:00:00' }, 'timestamp', /ISO-8601 date-time with a zone/],
    ['timestamp far in the future', { timestamp: new Date(Date.now() + 3600_000).toISOString() }, 'timestamp', /future/],
    ['negative tokens', { input_tokens: -1 }, 'input_tokens', /≥ 0/],
    ['fractional tokens', { output_tokens: 1.5 }, 'output_tokens', /integer/],
    ['tokens as string', { output_tokens: '12' }, 'output_tokens', /must be a number/],
    ['NaN cost', { cost_usd: Number.NaN }, 'cost_usd', /cost_usd/],
    ['Infinity cost', { cost_usd: Number.POSITIVE_INFINITY }, 'cost_usd', /cost_usd/],
    ['negative cost', { cost_usd: -0.1 }, 'cost_usd', /≥ 0/],
    ['bad status', { status: 'failed' }, 'status', /'ok' or 'error'/],
    ['batch not boolean', { batch: 'yes' }, 'batch', /true or false/],
    ['cache above input', { cache_read_tokens: 2000 }, 'cache_read_tokens', /must not exceed input_tokens/],
    ['attribute value not string', { attributes: { tier: 1 } }, 'attributes.tier', /strings/],
    ['too many attributes', { attributes: Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v'])) }, 'attributes', /at most 32 keys/],
    ['unknown field (strict)', { colour: 'red' }, 'colour', /unknown field/],
  ]
  for (const [name, patch, path, msg] of cases) {
    it(`rejects ${name} with a message naming ${path}`, () => {
      const input: Record<string, unknown> = { ...good, ...patch }
      for (const [k, v] of Object.entries(patch)) if (v === undefined) delete input[k]
      const errs = errorsOf(input)
      const e = errs.find((x) => x.path === path)
      expect(e, JSON.stringify(errs)).toBeDefined()
      expect(e!.message).toMatch(msg)
    })
  }

  it('drops unknown fields in lenient mode', () => {
    const r = UsageEventLenient.parse({ ...good, colour: 'red' })
    expect(r).not.toHaveProperty('colour')
  })
})

describe('deployment marker, window and alert records', () => {
  it('deployment marker names its bad fields', () => {
    const errs = errorsOf({ deployment_id: '', team: 'search', timestamp: 'yesterday', url: 'not a url' }, DeploymentMarker as never)
    expect(errs.map((e) => e.path).sort()).toEqual(['deployment_id', 'service', 'timestamp', 'url'])
  })
  it('window record requires cost_sq_sum and the deployments map', () => {
    const w = { team: 't', endpoint: 'e', model: 'm', window_start: '2026-11-22T10:00:00.000Z', window_end: '2026-11-22T10:01:00.000Z', requests: 3, errors: 0, input_tokens: 3, output_tokens: 3, cache_read_tokens: 0, cache_write_tokens: 0, cost_usd: 0.3, cost_sq_sum: 0.03, unpriced_requests: 0, late_events: 0, deployments: { d1: 3 } }
    expect(WindowRecord.safeParse(w).success).toBe(true)
    const { cost_sq_sum: _drop, ...noSq } = w
    expect(errorsOf(noSq, WindowRecord as never).map((e) => e.path)).toContain('cost_sq_sum')
  })
  it('alert record rejects an unknown status and a missing change point', () => {
    const errs = errorsOf({ alert_id: 'a', status: 'open', team: 't', endpoint: null, model: null, signal: 'burn_rate', direction: 'up', baseline: 1, current: 2, change_pct: 100, detected_at: '2026-11-22T10:00:00Z', deployment_ids: [], drivers: { input_tokens_per_request: 0, output_tokens_per_request: 0, cache_reads: 0, price: 0, error_share: 0, primary: 'volume' }, severity: 'warning', monthly_impact_usd: 10 }, AlertRecord as never)
    expect(errs.map((e) => e.path).sort()).toEqual(['started_at', 'status'])
  })
})

describe('JSON Schema in schemas/', () => {
  it('is up to date with the zod schemas (run `npm run schemas` when this fails)', () => {
    for (const [file, schema] of Object.entries(jsonSchemas())) {
      const committed = JSON.parse(readFileSync(new URL(`../../schemas/${file}`, import.meta.url), 'utf8'))
      expect(committed, file).toEqual(JSON.parse(JSON.stringify(schema)))
    }
  })
})

describe('cross-field checks', () => {
  it('do not add a second error when a token count is itself invalid', () => {
    const errs = errorsOf({ ...good, input_tokens: -3 })
    expect(errs.map((e) => e.path)).toEqual(['input_tokens'])
  })
})
