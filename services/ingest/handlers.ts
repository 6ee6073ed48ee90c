/**
 * The three write routes. Each runs the same steps, cheapest first, and stops at the first
 * failure: authenticate (401) → content type (415) → read under the limit (413) → parse (400)
 * → validate every item (400) → teams of the key (403) → publish and wait for acks (503) → 2xx.
 */
import type { IncomingMessage } from 'node:http'
import { DeploymentMarker } from '../../schemas/index.ts'
import { deploymentRecords, usageEventRecords } from '../../shared/producer/records.ts'
import { invalidBatchMessage, validateBatch, validateUsageEvents, type ItemError } from '../../shared/producer/validate.ts'
import { checkTeams, type Authenticate } from './auth.ts'
import { bodyText, mediaType, readBody, unsupportedMediaType } from './body.ts'
import { HttpError } from './http-error.ts'
import type { IngestMetrics } from './metrics.ts'
import { mapOtlpTraces, OTLP_SOURCES } from './otlp.ts'
import { JSON_TYPE, NDJSON_TYPES, parseBatch, parseJsonBatch } from './parse.ts'
import type { Publish } from './publish.ts'

/** Filled in as a request progresses, for its log line and metrics. */
export interface RequestContext {
  keyEnv: string | null
  items: number | null
}

export interface Reply {
  status: number
  body: unknown
  headers?: Record<string, string>
}

export interface HandlerDeps {
  authenticate: Authenticate
  publish: Publish
  topics: { events: string; deployments: string }
  strictDefault: boolean
  bodyLimitBytes: number
  metrics: IngestMetrics
}

export type Handler = (req: IncomingMessage, url: URL, ctx: RequestContext) => Promise<Reply>

function strictMode(url: URL, strictDefault: boolean): boolean {
  const mode = url.searchParams.get('mode')
  if (mode === null || mode === '') return strictDefault
  if (mode === 'strict') return true
  if (mode === 'lenient') return false
  throw new HttpError(400, 'invalid_mode', `mode must be strict or lenient, got '${mode.slice(0, 32)}'.`)
}

function invalidItems(r: { errors: ItemError[]; invalid: number; total: number }, error: string, noun: string, errors: unknown[] = r.errors): HttpError {
  return new HttpError(400, error, invalidBatchMessage(r.invalid, r.total, noun), { reason: 'invalid', items: r.total, invalid: r.invalid, extra: { errors } })
}

export function createHandlers(d: HandlerDeps): { events: Handler; deployments: Handler; traces: Handler } {
  const authenticate = (req: IncomingMessage, ctx: RequestContext) => {
    const p = d.authenticate(req.headers.authorization)
    ctx.keyEnv = p?.keyEnv ?? null
    return p
  }

  const events: Handler = async (req, url, ctx) => {
    const principal = authenticate(req, ctx)
    const strict = strictMode(url, d.strictDefault)
    const type = mediaType(req)
    if (type !== JSON_TYPE && !(NDJSON_TYPES as readonly string[]).includes(type)) throw unsupportedMediaType(type, [JSON_TYPE, 'application/x-ndjson'])
    const batch = parseBatch(bodyText(await readBody(req, d.bodyLimitBytes)), type)
    ctx.items = batch.items.length
    const checked = validateUsageEvents(batch.items, { strict })
    if (!checked.ok) {
      const lines = batch.lines
      throw invalidItems(checked, 'invalid_events', 'events', lines ? checked.errors.map((e) => ({ ...e, line: lines[e.index] })) : checked.errors)
    }
    checkTeams(principal, checked.items)
    await d.publish(d.topics.events, usageEventRecords(checked.items))
    d.metrics.received.inc(checked.items.length)
    return { status: 202, body: { accepted: checked.items.length } }
  }

  const deployments: Handler = async (req, _url, ctx) => {
    const principal = authenticate(req, ctx)
    const type = mediaType(req)
    if (type !== JSON_TYPE) throw unsupportedMediaType(type, [JSON_TYPE])
    const batch = parseJsonBatch(bodyText(await readBody(req, d.bodyLimitBytes)), 'deployment marker')
    ctx.items = batch.items.length
    const checked = validateBatch(DeploymentMarker, batch.items, 'deployment marker')
    if (!checked.ok) throw invalidItems(checked, 'invalid_deployments', 'deployment markers')
    checkTeams(principal, checked.items, 'deployment markers')
    await d.publish(d.topics.deployments, deploymentRecords(checked.items))
    d.metrics.deployments.inc(checked.items.length)
    return { status: 202, body: { accepted: checked.items.length } }
  }

  const traces: Handler = async (req, _url, ctx) => {
    const principal = authenticate(req, ctx)
    const type = mediaType(req)
    if (type === 'application/x-protobuf' || type === 'application/protobuf') {
      throw unsupportedMediaType(type, [JSON_TYPE], 'Burnwatch accepts OTLP/HTTP JSON only: configure the exporter with protocol http/json (OTEL_EXPORTER_OTLP_PROTOCOL=http/json).')
    }
    if (type !== JSON_TYPE) throw unsupportedMediaType(type, [JSON_TYPE], 'Send OTLP/HTTP JSON (protocol http/json).')
    const text = bodyText(await readBody(req, d.bodyLimitBytes))
    let body: unknown
    try {
      body = JSON.parse(text)
    } catch (err) {
      throw new HttpError(400, 'malformed_body', `The body is not valid JSON: ${err instanceof Error ? err.message : String(err)}. Send an OTLP ExportTraceServiceRequest as JSON.`, { reason: 'malformed' })
    }
    const mapped = mapOtlpTraces(body)
    ctx.items = mapped.events.length
    // Every candidate is validated strictly: the mapping only produces known fields.
    const checked = validateUsageEvents(
      mapped.events.map((m) => m.event),
      { strict: true },
    )
    if (!checked.ok) {
      const errors = checked.errors.map((e) => {
        const source = OTLP_SOURCES[e.path]
        return { ...e, span: mapped.events[e.index]?.span, message: source ? `${e.message} (from ${source})` : e.message }
      })
      throw invalidItems(checked, 'invalid_events', 'gen_ai spans', errors)
    }
    checkTeams(principal, checked.items)
    await d.publish(d.topics.events, usageEventRecords(checked.items))
    d.metrics.received.inc(checked.items.length)
    return { status: 200, body: { accepted: checked.items.length, ignored_spans: mapped.ignored } }
  }

  return { events, deployments, traces }
}
