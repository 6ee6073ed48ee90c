// Pure mapping of OTLP/HTTP JSON gen_ai spans to usage events, and the key checks of ingest auth.
import { describe, expect, it } from 'vitest'
import { checkTeams, createAuthenticator } from '../../services/ingest/auth.ts'
import { HttpError } from '../../services/ingest/http-error.ts'
import { mapOtlpTraces, otlpRouting } from '../../services/ingest/otlp.ts'
import { parseConfigFile } from '../../shared/config.ts'
import { validateUsageEvents } from '../../shared/producer/index.ts'

const str = (key: string, v: string) => ({ key, value: { stringValue: v } })
const int = (key: string, v: number) => ({ key, value: { intValue: String(v) } })

const END = 1_795_000_000_000_000_000n // 2026-11-18T...
const span = (over: Record<string, unknown> = {}, attrs: unknown[] = []) => ({
  traceId: '5b8efff798038103d269b633813fc60c',
  spanId: 'eee19b7ec3c1b174',
  name: 'chat gpt-4o-mini',
  kind: 3,
  startTimeUnixNano: String(END - 1_250_000_000n),
  endTimeUnixNano: String(END),
  attributes: [str('gen_ai.operation.name', 'chat'), str('gen_ai.system', 'openai'), str('gen_ai.request.model', 'gpt-4o'), str('gen_ai.response.model', 'gpt-4o-2024-08-06'), int('gen_ai.usage.input_tokens', 1200), int('gen_ai.usage.output_tokens', 80), str('burnwatch.team', 'search'), ...attrs],
  status: {},
  ...over,
})

const request = (spans: unknown[], resourceAttrs: unknown[] = [str('service.name', 'summarizer'), str('deployment.id', 'dep-42'), str('service.version', '1.2.3')]) => ({
  resourceSpans: [{ resource: { attributes: resourceAttrs }, scopeSpans: [{ scope: { name: 'openai-instrumentation' }, spans }] }],
})

describe('OTLP gen_ai spans → usage events', () => {
  it('maps the semantic-convention attributes', () => {
    const m = mapOtlpTraces(request([span({}, [int('gen_ai.usage.cache_read.input_tokens', 1000), str('burnwatch.endpoint', 'POST /v1/summarize')])]))
    expect(m).toMatchObject({ spans: 1, ignored: 0 })
    expect(m.events[0]!.event).toEqual({
      event_id: '5b8efff798038103d269b633813fc60c:eee19b7ec3c1b174',
      timestamp: new Date(Number(END / 1_000_000n)).toISOString(),
      team: 'search',
      endpoint: 'POST /v1/summarize',
      model: 'gpt-4o-2024-08-06',
      provider: 'openai',
      service: 'summarizer',
      deployment_id: 'dep-42',
      input_tokens: 1200,
      output_tokens: 80,
      cache_read_tokens: 1000,
      latency_ms: 1250,
      status: 'ok',
    })
    expect(m.events[0]!.span).toBe('resourceSpans[0].scopeSpans[0].spans[0]')
    expect(validateUsageEvents([m.events[0]!.event], { strict: true }).ok).toBe(true)
  })

  it('falls back to resource team, span name, service.version, gen_ai.provider.name and older attribute names', () => {
    const s = span({ name: 'summarize', attributes: [str('gen_ai.provider.name', 'anthropic'), str('gen_ai.request.model', 'claude-sonnet-4'), { key: 'gen_ai.usage.prompt_tokens', value: { intValue: 10 } }, { key: 'gen_ai.usage.completion_tokens', value: { doubleValue: 3 } }, int('gen_ai.usage.cache_read_input_tokens', 4)] })
    const e = mapOtlpTraces(request([s], [str('team', 'support'), str('service.version', '9.9.9')])).events[0]!.event
    expect(e).toMatchObject({ team: 'support', endpoint: 'summarize', deployment_id: '9.9.9', provider: 'anthropic', model: 'claude-sonnet-4', input_tokens: 10, output_tokens: 3, cache_read_tokens: 4 })
  })

  it('marks status code 2 as error and counts a failed call without usage as zero tokens', () => {
    const failed = span({ status: { code: 2, message: 'rate limited' }, attributes: [str('gen_ai.request.model', 'gpt-4o'), str('burnwatch.team', 'search')] })
    const e = mapOtlpTraces(request([failed])).events[0]!.event
    expect(e).toMatchObject({ status: 'error', input_tokens: 0, output_tokens: 0, model: 'gpt-4o' })
    expect(mapOtlpTraces(request([span({ status: { code: 'STATUS_CODE_ERROR' } })])).events[0]!.event.status).toBe('error')
  })

  it('passes the span attribute http.request.resend_count (and retry_attempt) on as an event attribute, so the call counts as a retry', async () => {
    const { isRetry } = await import('../../schemas/usage-event.ts')
    const resent = span({}, [int('http.request.resend_count', 2)])
    const burnwatch = span({ spanId: 'aaa19b7ec3c1b174' }, [str('retry_attempt', '1')])
    const first = span({ spanId: 'bbb19b7ec3c1b174' }, [int('http.request.resend_count', 0)])
    const plain = span({ spanId: 'ccc19b7ec3c1b174' })
    const events = mapOtlpTraces(request([resent, burnwatch, first, plain])).events.map((x) => x.event)
    expect(events.map((e) => e.attributes)).toEqual([{ 'http.request.resend_count': '2' }, { retry_attempt: '1' }, { 'http.request.resend_count': '0' }, undefined])
    expect(events.map((e) => isRetry(e.attributes as Record<string, string> | undefined))).toEqual([true, true, false, false])
    expect(validateUsageEvents(events, { strict: true }).ok).toBe(true)
  })

  it('ignores spans that are not model calls (HTTP, tools, agents)', () => {
    const http = { traceId: 'a', spanId: 'b', name: 'GET /', attributes: [str('http.method', 'GET')] }
    const tool = span({ spanId: 'c' }, [str('gen_ai.operation.name', 'execute_tool')])
    tool.attributes = [str('gen_ai.operation.name', 'execute_tool'), str('gen_ai.tool.name', 'search')]
    const agent = span({ spanId: 'd', attributes: [str('gen_ai.operation.name', 'invoke_agent'), int('gen_ai.usage.input_tokens', 5000)] })
    const m = mapOtlpTraces(request([http, tool, agent, span()]))
    expect(m).toMatchObject({ spans: 4, ignored: 3 })
    expect(m.events.map((x) => x.span)).toEqual(['resourceSpans[0].scopeSpans[0].spans[3]'])
  })

  it('leaves missing usage for validation to report, and rejects a body that is not OTLP', () => {
    const noUsage = span({ attributes: [str('gen_ai.request.model', 'gpt-4o'), str('burnwatch.team', 'search')] })
    const r = validateUsageEvents([mapOtlpTraces(request([noUsage])).events[0]!.event], { strict: true })
    expect(r.ok).toBe(false)
    if (!r.ok) expect(r.errors.map((x) => x.path).sort()).toEqual(['input_tokens', 'output_tokens'])
    expect(() => mapOtlpTraces({ spans: [] })).toThrow(HttpError)
    expect(mapOtlpTraces({ resourceSpans: [] })).toEqual({ events: [], spans: 0, ignored: 0 })
  })

  it('routes spans without a team by service.name, maps deployment.environment.name, keeps reasoning tokens', () => {
    const routing = otlpRouting(parseConfigFile('otlp:\n  services:\n    - {service_name: summarizer, team: docs, environment: dev}\n  environments: {stg: staging}\n  default_team: platform\n'))
    const noTeam = span({ attributes: span().attributes.filter((a) => (a as { key: string }).key !== 'burnwatch.team').concat([int('gen_ai.usage.reasoning.output_tokens', 30)]) })
    const mapped = (resourceAttrs: unknown[]) => mapOtlpTraces(request([noTeam], resourceAttrs), routing).events[0]!.event
    expect(mapped([str('service.name', 'summarizer'), str('deployment.environment.name', 'stg')])).toMatchObject({ team: 'docs', environment: 'staging', reasoning_tokens: 30 })
    // the service's environment when the span names none; an unmapped name is kept as sent
    expect(mapped([str('service.name', 'summarizer')])).toMatchObject({ team: 'docs', environment: 'dev' })
    expect(mapped([str('service.name', 'other'), str('deployment.environment', 'qa')])).toMatchObject({ team: 'platform', environment: 'qa' })
    // without routing a span without team stays without one (validation rejects it)
    expect(mapOtlpTraces(request([noTeam])).events[0]!.event.team).toBeUndefined()
    // a team attribute wins over the routing
    expect(mapOtlpTraces(request([span()], [str('service.name', 'summarizer')]), routing).events[0]!.event).toMatchObject({ team: 'search', environment: 'dev' })
  })
})

describe('ingest keys', () => {
  const keys = [
    { key: 'k-search-0123456789abcdef', keyEnv: 'SEARCH_INGEST_KEY', teams: ['search'] },
    { key: 'k-billing-0123456789abcdef', keyEnv: 'BILLING_INGEST_KEY', teams: ['billing', 'ledger'] },
  ]
  const auth = createAuthenticator(keys)
  const status = (fn: () => unknown) => {
    try {
      fn()
      return 0
    } catch (err) {
      return err instanceof HttpError ? err.status : -1
    }
  }

  it('is open without keys, and otherwise requires a known Bearer key', () => {
    expect(createAuthenticator([])(undefined)).toBeNull()
    expect(auth('Bearer k-billing-0123456789abcdef')?.keyEnv).toBe('BILLING_INGEST_KEY')
    expect(auth('bearer   k-search-0123456789abcdef')?.keyEnv).toBe('SEARCH_INGEST_KEY')
    expect(status(() => auth(undefined))).toBe(401)
    expect(status(() => auth('Basic abc'))).toBe(401)
    expect(status(() => auth('Bearer k-search-0123456789abcdeX'))).toBe(401)
  })

  it('never echoes the presented key', () => {
    try {
      auth('Bearer super-secret-guess-1234')
    } catch (err) {
      expect(JSON.stringify((err as HttpError).body)).not.toContain('super-secret')
    }
  })

  it('403 names the offending team and item index', () => {
    const p = auth('Bearer k-search-0123456789abcdef')
    expect(() => checkTeams(p, [{ team: 'search' }])).not.toThrow()
    try {
      checkTeams(p, [{ team: 'search' }, { team: 'billing' }])
      expect.unreachable()
    } catch (err) {
      const e = err as HttpError
      expect(e.status).toBe(403)
      expect(e.body.message).toMatch(/item 1 is for team 'billing'/)
      expect(e.body.errors).toEqual([{ index: 1, path: 'team', message: "team 'billing' is not allowed for this key" }])
    }
  })
})
