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
import { mapOtlpTraces, OTLP_SOURCES, type OtlpRouting } from './otlp.ts'
import { decodeOtlpTraces, encodeOtlpResponse } from './otlp-proto.ts'
import type { UsageEvent } from '../../schemas/index.ts'
import { JSON_TYPE, NDJSON_TYPES, parseBatch, parseJsonBatch } from './parse.ts'
import type { Publish } from './publish.ts'

/** Filled in as a request progresses, for its log line and metrics. */
export interface RequestContext {
  keyEnv: string | null
  items: number | null
  /** an OTLP protobuf request: its errors are answered as google.rpc.Status messages */
  otlpProtobuf?: boolean
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
  otlpRouting: OtlpRouting
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
    const type = mediaType(req)
    const proto = type === 'application/x-protobuf' || type === 'application/protobuf'
    // errors of a protobuf request are answered as google.rpc.Status (server.ts)
    ctx.otlpProtobuf = proto
    const principal = authenticate(req, ctx)
    if (!proto && type !== JSON_TYPE) throw unsupportedMediaType(type, [JSON_TYPE, 'application/x-protobuf'], 'Send OTLP/HTTP JSON or protobuf.')
    const raw = await readBody(req, d.bodyLimitBytes)
    let body: unknown
    if (proto) body = decodeOtlpTraces(raw)
    else {
      try {
        body = JSON.parse(bodyText(raw))
      } catch (err) {
        if (err instanceof HttpError) throw err
        throw new HttpError(400, 'malformed_body', `The body is not valid JSON: ${err instanceof Error ? err.message : String(err)}. Send an OTLP ExportTraceServiceRequest as JSON.`, { reason: 'malformed' })
      }
    }
    const mapped = mapOtlpTraces(body, d.otlpRouting)
    ctx.items = mapped.events.length
    // Each span on its own (strictly: the mapping only produces known fields). Unusable spans are
    // rejected the OTLP way: the rest is accepted and the answer's partialSuccess counts and names them.
    const accepted: UsageEvent[] = []
    const rejected: { span: string | undefined; path: string; message: string }[] = []
    mapped.events.forEach((m) => {
      const one = validateUsageEvents([m.event], { strict: true })
      if (one.ok) accepted.push(one.items[0]!)
      else {
        const e = one.errors[0]!
        const source = OTLP_SOURCES[e.path]
        rejected.push({ span: m.span, path: e.path, message: source ? `${e.message} (from ${source})` : e.message })
      }
    })
    checkTeams(principal, accepted)
    if (accepted.length) await d.publish(d.topics.events, usageEventRecords(accepted))
    d.metrics.received.inc(accepted.length)
    if (rejected.length) d.metrics.rejected.inc({ reason: 'invalid' }, rejected.length)
    const first = rejected[0]
    const partial = first ? { rejectedSpans: rejected.length, errorMessage: `${rejected.length} of ${mapped.events.length} gen_ai spans were rejected; first: ${first.span ?? 'span'}: ${first.path}: ${first.message}` } : null
    if (proto) return { status: 200, body: encodeOtlpResponse(partial), headers: { 'content-type': 'application/x-protobuf' } }
    // OTLP/HTTP JSON: ExportTraceServiceResponse (partialSuccess only when something was rejected), plus Burnwatch's counts
    return {
      status: 200,
      body: {
        ...(partial ? { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } } : {}),
        accepted: accepted.length,
        ignored_spans: mapped.ignored,
        ...(rejected.length ? { errors: rejected.slice(0, 100) } : {}),
      },
    }
  }

  return { events, deployments, traces }
}
