/**
 * OpenTelemetry traces (OTLP/HTTP JSON) → usage events, following the GenAI semantic
 * conventions. Pure: no I/O. Spans that are not model calls are ignored; the events that come
 * out are validated like any other (the caller does that).
 *
 * A span is a model call when it carries token usage or a model (`gen_ai.usage.*`,
 * `gen_ai.request.model`, `gen_ai.response.model`) and its `gen_ai.operation.name` is not an
 * agent or tool operation (those repeat their children's usage or have none).
 */
import { RETRY_ATTRIBUTES } from '../../schemas/usage-event.ts'
import { HttpError } from './http-error.ts'

type AttrValue = string | number | boolean | undefined
type Attrs = Map<string, AttrValue>

export interface MappedSpan {
  /** the candidate usage event, not yet validated */
  event: Record<string, unknown>
  /** where the span is in the request, e.g. `resourceSpans[0].scopeSpans[1].spans[3]` */
  span: string
}

export interface OtlpMapping {
  events: MappedSpan[]
  /** spans in the request */
  spans: number
  /** spans that are not model calls */
  ignored: number
}

/** Where each event field comes from, to name it in validation errors. */
export const OTLP_SOURCES: Record<string, string> = {
  event_id: 'span traceId + spanId',
  timestamp: 'span endTimeUnixNano',
  team: 'attribute burnwatch.team, resource attribute team, or service.name in otlp.services of the config',
  environment: 'resource attribute deployment.environment.name (mapped by otlp.environments of the config)',
  endpoint: 'attribute burnwatch.endpoint, or the span name',
  model: 'attribute gen_ai.response.model or gen_ai.request.model',
  provider: 'attribute gen_ai.provider.name or gen_ai.system',
  service: 'resource attribute service.name',
  deployment_id: 'resource attribute deployment.id or service.version',
  input_tokens: 'attribute gen_ai.usage.input_tokens',
  output_tokens: 'attribute gen_ai.usage.output_tokens',
  cache_read_tokens: 'attribute gen_ai.usage.cache_read.input_tokens',
  cache_write_tokens: 'attribute gen_ai.usage.cache_creation.input_tokens',
  reasoning_tokens: 'attribute gen_ai.usage.reasoning.output_tokens',
  latency_ms: 'span end - start time',
  attributes: 'span attributes http.request.resend_count and retry_attempt (a retry when an integer >= 1)',
}

/** How spans without Burnwatch attributes find their team and environment (config `otlp`). */
export interface OtlpRouting {
  /** service.name → team, and optionally environment and endpoint */
  services: ReadonlyMap<string, { team: string; environment?: string | undefined; endpoint?: string | undefined }>
  /** deployment.environment.name as services send it → the environment name Burnwatch stores */
  environments: Readonly<Record<string, string>>
  defaultTeam: string | null
}

export const NO_ROUTING: OtlpRouting = { services: new Map(), environments: {}, defaultTeam: null }

export function otlpRouting(file: { otlp: { services: { service_name: string; team: string; environment?: string | undefined; endpoint?: string | undefined }[]; environments: Record<string, string>; default_team?: string | undefined } }): OtlpRouting {
  return {
    services: new Map(file.otlp.services.map((s) => [s.service_name, { team: s.team, environment: s.environment, endpoint: s.endpoint }])),
    environments: file.otlp.environments,
    defaultTeam: file.otlp.default_team ?? null,
  }
}

const NOT_MODEL_CALLS = new Set(['execute_tool', 'invoke_agent', 'create_agent'])

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)

function list(v: unknown): unknown[] {
  return Array.isArray(v) ? v : []
}

/** OTLP JSON AnyValue → a scalar (int64 arrives as a string or a number). */
function anyValue(v: unknown): AttrValue {
  if (!isObj(v)) return undefined
  if (typeof v.stringValue === 'string') return v.stringValue
  if (typeof v.boolValue === 'boolean') return v.boolValue
  if (typeof v.intValue === 'number') return v.intValue
  if (typeof v.intValue === 'string' && /^-?\d+$/.test(v.intValue)) return Number(v.intValue)
  if (typeof v.doubleValue === 'number') return v.doubleValue
  if (typeof v.doubleValue === 'string' && v.doubleValue.trim() !== '' && Number.isFinite(Number(v.doubleValue))) return Number(v.doubleValue)
  return undefined
}

function attributes(v: unknown): Attrs {
  const m: Attrs = new Map()
  for (const kv of list(v)) {
    if (isObj(kv) && typeof kv.key === 'string') m.set(kv.key, anyValue(kv.value))
  }
  return m
}

const str = (v: AttrValue): string | undefined => (typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined)

/** Token counts: a number, or a numeric string some SDKs send; anything else is passed on for validation to reject. */
function tokens(v: AttrValue): unknown {
  if (typeof v === 'string' && /^\d+(\.0+)?$/.test(v.trim())) return Number(v)
  return v
}

function first(attrs: Attrs, names: readonly string[]): AttrValue {
  for (const n of names) if (attrs.get(n) !== undefined) return attrs.get(n)
  return undefined
}

function nanos(v: unknown): bigint | null {
  if (typeof v === 'string' && /^\d+$/.test(v)) return BigInt(v)
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v)
  if (typeof v === 'number' && Number.isFinite(v) && v > 0) return BigInt(Math.round(v))
  return null
}

function isoFromNanos(n: bigint | null): string | undefined {
  if (n === null || n <= 0n) return undefined
  const ms = Number(n / 1_000_000n)
  const d = new Date(ms)
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString()
}

function isError(status: unknown): boolean {
  if (!isObj(status)) return false
  return status.code === 2 || status.code === 'STATUS_CODE_ERROR'
}

const USAGE_INPUT = ['gen_ai.usage.input_tokens', 'gen_ai.usage.prompt_tokens']
const USAGE_OUTPUT = ['gen_ai.usage.output_tokens', 'gen_ai.usage.completion_tokens']
const CACHE_READ = ['gen_ai.usage.cache_read.input_tokens', 'gen_ai.usage.cache_read_input_tokens']
const CACHE_WRITE = ['gen_ai.usage.cache_creation.input_tokens', 'gen_ai.usage.cache_creation_input_tokens']
const MODEL = ['gen_ai.response.model', 'gen_ai.request.model']
const REASONING = ['gen_ai.usage.reasoning.output_tokens', 'gen_ai.usage.reasoning_tokens']
// deployment.environment is the name before semantic conventions 1.27
const ENVIRONMENT = ['deployment.environment.name', 'deployment.environment']

function isModelCall(a: Attrs): boolean {
  const op = a.get('gen_ai.operation.name')
  if (typeof op === 'string' && NOT_MODEL_CALLS.has(op)) return false
  return [...USAGE_INPUT, ...USAGE_OUTPUT, ...MODEL].some((k) => a.get(k) !== undefined)
}

/**
 * The span's retry attributes (RETRY_ATTRIBUTES: OpenTelemetry's `http.request.resend_count`, an
 * int, and Burnwatch's `retry_attempt`) as event attributes, integers written in decimal digits,
 * so the aggregator counts the call as a retry; undefined when the span has none.
 */
function retryAttributes(a: Attrs): Record<string, string> | undefined {
  let out: Record<string, string> | undefined
  for (const k of RETRY_ATTRIBUTES) {
    const v = a.get(k)
    const text = typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : typeof v === 'string' && v !== '' ? v : undefined
    if (text !== undefined) (out ??= {})[k] = text.slice(0, 1024)
  }
  return out
}

/** One candidate usage event from a model-call span. */
export function spanToEvent(span: Record<string, unknown>, a: Attrs, resource: Attrs, routing: OtlpRouting = NO_ROUTING): Record<string, unknown> {
  const error = isError(span.status)
  const op = a.get('gen_ai.operation.name')
  const start = nanos(span.startTimeUnixNano)
  const end = nanos(span.endTimeUnixNano)
  const traceId = typeof span.traceId === 'string' ? span.traceId : ''
  const spanId = typeof span.spanId === 'string' ? span.spanId : ''
  let input = tokens(first(a, USAGE_INPUT))
  let output = tokens(first(a, USAGE_OUTPUT))
  // A failed call often reports no usage; it still counts as a request (with status error).
  if (error) {
    input ??= 0
    output ??= 0
  }
  // Embeddings produce no output tokens.
  if (op === 'embeddings') output ??= 0

  const service = str(first(resource, ['service.name']))
  const routed = service !== undefined ? routing.services.get(service) : undefined
  const envName = str(first(a, ENVIRONMENT)) ?? str(first(resource, ENVIRONMENT))
  const e: Record<string, unknown> = {
    event_id: traceId && spanId ? `${traceId}:${spanId}` : undefined,
    timestamp: isoFromNanos(end) ?? isoFromNanos(start),
    team: str(first(a, ['burnwatch.team'])) ?? str(first(resource, ['burnwatch.team', 'team'])) ?? routed?.team ?? routing.defaultTeam ?? undefined,
    endpoint: str(first(a, ['burnwatch.endpoint'])) ?? str(first(resource, ['burnwatch.endpoint'])) ?? routed?.endpoint ?? (typeof span.name === 'string' && span.name ? span.name : undefined),
    environment: envName !== undefined ? (routing.environments[envName] ?? envName) : routed?.environment,
    model: str(first(a, MODEL)),
    provider: str(first(a, ['gen_ai.provider.name', 'gen_ai.system'])),
    service,
    deployment_id: str(first(resource, ['deployment.id'])) ?? str(first(a, ['deployment.id'])) ?? str(first(resource, ['service.version'])),
    input_tokens: input,
    output_tokens: output,
    cache_read_tokens: tokens(first(a, CACHE_READ)),
    cache_write_tokens: tokens(first(a, CACHE_WRITE)),
    reasoning_tokens: tokens(first(a, REASONING)),
    latency_ms: start !== null && end !== null && end >= start ? Number(end - start) / 1e6 : undefined,
    status: error ? 'error' : 'ok',
    attributes: retryAttributes(a),
  }
  for (const k of Object.keys(e)) if (e[k] === undefined) delete e[k]
  return e
}

/** Maps an ExportTraceServiceRequest (OTLP JSON, or protobuf decoded to the same shape); 400 when the body is not one. */
export function mapOtlpTraces(body: unknown, routing: OtlpRouting = NO_ROUTING): OtlpMapping {
  if (!isObj(body) || !Array.isArray(body.resourceSpans)) {
    throw new HttpError(400, 'malformed_body', 'The body is not an OTLP ExportTraceServiceRequest: expected a JSON object with a resourceSpans array (OTLP/HTTP JSON encoding).', { reason: 'malformed' })
  }
  const events: MappedSpan[] = []
  let spans = 0
  body.resourceSpans.forEach((rs: unknown, ri) => {
    if (!isObj(rs)) return
    const resource = attributes(isObj(rs.resource) ? rs.resource.attributes : undefined)
    // `instrumentationLibrarySpans` is the name before OTLP 0.19
    const scopes = list(rs.scopeSpans ?? rs.instrumentationLibrarySpans)
    const scopeKey = rs.scopeSpans !== undefined ? 'scopeSpans' : 'instrumentationLibrarySpans'
    scopes.forEach((ss, si) => {
      if (!isObj(ss)) return
      list(ss.spans).forEach((span, pi) => {
        spans++
        if (!isObj(span)) return
        const a = attributes(span.attributes)
        if (!isModelCall(a)) return
        events.push({ event: spanToEvent(span, a, resource, routing), span: `resourceSpans[${ri}].${scopeKey}[${si}].spans[${pi}]` })
      })
    })
  })
  return { events, spans, ignored: spans - events.length }
}
