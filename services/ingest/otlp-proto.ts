/**
 * OTLP/HTTP protobuf (`application/x-protobuf`) for `/v1/traces`: the official OpenTelemetry
 * protos (vendored from open-telemetry/opentelemetry-proto v1.11.0 in `otlp-protos/`, Apache-2.0)
 * decoded by protobufjs. A request becomes the same object the OTLP/HTTP JSON encoding gives
 * (camelCase fields, 64-bit integers as decimal strings, trace and span IDs as hex), so one
 * mapping (otlp.ts) serves both encodings. Responses are ExportTraceServiceResponse messages and
 * errors google.rpc.Status messages, as the OTLP/HTTP specification asks for protobuf requests.
 */
import { fileURLToPath } from 'node:url'
import protobuf from 'protobufjs'
import { HttpError } from './http-error.ts'

const PROTO_DIR = fileURLToPath(new URL('./otlp-protos/', import.meta.url))

let types: { request: protobuf.Type; response: protobuf.Type; status: protobuf.Type } | null = null

function load() {
  if (types) return types
  const root = new protobuf.Root()
  root.resolvePath = (_origin, target) => PROTO_DIR + target
  root.loadSync('opentelemetry/proto/collector/trace/v1/trace_service.proto', { keepCase: false })
  // google.rpc.Status (googleapis google/rpc/status.proto) without its `details`: OTLP puts only code and message in it
  const status = new protobuf.Type('Status').add(new protobuf.Field('code', 1, 'int32')).add(new protobuf.Field('message', 2, 'string'))
  root.define('google.rpc').add(status)
  types = {
    request: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest'),
    response: root.lookupType('opentelemetry.proto.collector.trace.v1.ExportTraceServiceResponse'),
    status: root.lookupType('google.rpc.Status'),
  }
  return types
}

const hex = (b: unknown): unknown => (b instanceof Uint8Array ? Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex') : b)

/** Decodes an ExportTraceServiceRequest into its OTLP JSON shape; 400 when the bytes are not one. */
export function decodeOtlpTraces(body: Uint8Array): unknown {
  const { request } = load()
  let obj: { resourceSpans?: { scopeSpans?: { spans?: Record<string, unknown>[] }[] }[] }
  try {
    obj = request.toObject(request.decode(body), { longs: String, enums: Number, arrays: true, defaults: false }) as typeof obj
  } catch (err) {
    throw new HttpError(400, 'malformed_body', `The body is not an OTLP ExportTraceServiceRequest in protobuf encoding: ${err instanceof Error ? err.message : String(err)}.`, { reason: 'malformed' })
  }
  for (const rs of obj.resourceSpans ?? []) {
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        s.traceId = hex(s.traceId)
        s.spanId = hex(s.spanId)
        if (s.parentSpanId !== undefined) s.parentSpanId = hex(s.parentSpanId)
      }
    }
  }
  return obj
}

export interface PartialSuccess {
  rejectedSpans: number
  errorMessage: string
}

/** An ExportTraceServiceResponse; `partialSuccess` only when spans were rejected (the spec: unset on full success). */
export function encodeOtlpResponse(partial: PartialSuccess | null): Buffer {
  const { response } = load()
  const msg = response.fromObject(partial ? { partialSuccess: { rejectedSpans: String(partial.rejectedSpans), errorMessage: partial.errorMessage } } : {})
  return Buffer.from(response.encode(msg).finish())
}

/** A google.rpc.Status, the body of an OTLP/HTTP protobuf error response. */
export function encodeOtlpStatus(httpStatus: number, message: string): Buffer {
  const { status } = load()
  // gRPC codes: INVALID_ARGUMENT 3, UNAUTHENTICATED 16, PERMISSION_DENIED 7, RESOURCE_EXHAUSTED 8, UNAVAILABLE 14, INTERNAL 13
  const code = httpStatus === 401 ? 16 : httpStatus === 403 ? 7 : httpStatus === 413 ? 8 : httpStatus === 503 ? 14 : httpStatus >= 500 ? 13 : 3
  return Buffer.from(status.encode(status.fromObject({ code, message })).finish())
}

/** Decodes a response (tests, and clients that want to read one). */
export function decodeOtlpResponse(body: Uint8Array): { partialSuccess?: { rejectedSpans?: string; errorMessage?: string } } {
  const { response } = load()
  return response.toObject(response.decode(body), { longs: String }) as never
}
