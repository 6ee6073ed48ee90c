/**
 * Usage event v1 (topic `usage.events`): one JSON object per model call.
 * The contract is ../shared/DESIGN.md "Usage event v1"; the JSON Schema in
 * `usage-event.v1.schema.json` is generated from this file (`npm run schemas`).
 */
import { z } from 'zod'

/** Events may be at most this far in the future (clock skew allowance). */
export const MAX_FUTURE_MS = 5 * 60_000
/**
 * Events before this are a broken clock (an unset clock reports 1970-01-01), not usage: ClickHouse
 * DateTime columns (cost_windows) start at 1970 and wrap earlier times to 2036-2106, and the raw
 * table's TTL drops such rows on insert, so they would be counted in windows but not stored.
 */
export const MIN_TIMESTAMP_MS = Date.UTC(2000, 0, 1)

/** zod's type error, saying "is required" when the field is absent */
export const typeError = (field: string, expected: string) => (iss: { input?: unknown }) =>
  iss.input === undefined ? `${field} is required (${expected})` : `${field} must be ${expected}`

const str = (field: string, max: number) =>
  z
    .string({ error: typeError(field, `a string of 1–${max} characters`) })
    .min(1, { error: `${field} must not be empty (1–${max} characters)` })
    .max(max, { error: `${field} is longer than ${max} characters` })

const count = (field: string) =>
  z
    .number({ error: typeError(field, 'a number (an integer ≥ 0)') })
    .int({ error: `${field} must be an integer ≥ 0` })
    .min(0, { error: `${field} must be ≥ 0` })
    .max(Number.MAX_SAFE_INTEGER, { error: `${field} is too large` })

const amount = (field: string) =>
  z
    .number({ error: typeError(field, 'a finite number ≥ 0') })
    .min(0, { error: `${field} must be ≥ 0` })
    .max(1e12, { error: `${field} is implausibly large (> 1e12)` })

/** The environment of events that name none. */
export const DEFAULT_ENVIRONMENT = 'production'

/**
 * Attributes that mark a call as a retry, with an integer value >= 1: OpenTelemetry's HTTP
 * semantic-convention `http.request.resend_count` ("the ordinal number of request resending
 * attempt"; OTLP spans pass it on as an attribute) and Burnwatch's plain `retry_attempt`. The
 * usage-event contract has no retry field: producers set one of these attributes.
 */
export const RETRY_ATTRIBUTES = ['http.request.resend_count', 'retry_attempt'] as const

/** True when an attribute of RETRY_ATTRIBUTES is an integer >= 1 in decimal digits ('1', '2', …; not '0', '-1', '01', '1.5', ' 1' or 'abc'). */
export function isRetry(attributes: Readonly<Record<string, string>> | undefined): boolean {
  if (!attributes) return false
  for (const k of RETRY_ATTRIBUTES) {
    const v = attributes[k]
    if (v !== undefined && /^[1-9]\d*$/.test(v)) return true
  }
  return false
}

export const isoTimestamp = (field: string) =>
  z.iso.datetime({ offset: true, error: typeError(field, 'an ISO-8601 date-time with a zone, e.g. 2026-11-22T10:00:00.123Z') })

export const usageEventFields = {
  event_id: str('event_id', 128),
  timestamp: isoTimestamp('timestamp'),
  team: str('team', 128),
  endpoint: str('endpoint', 256),
  model: str('model', 128),
  provider: str('provider', 64).optional(),
  service: str('service', 128).optional(),
  deployment_id: str('deployment_id', 128).optional(),
  /** default `production`; staging or dev traffic is its own series (OTLP `deployment.environment.name`) */
  environment: str('environment', 64).optional(),
  input_tokens: count('input_tokens'),
  output_tokens: count('output_tokens'),
  cache_read_tokens: count('cache_read_tokens').optional(),
  cache_write_tokens: count('cache_write_tokens').optional(),
  /** part of `output_tokens` spent on reasoning (OTLP `gen_ai.usage.reasoning.output_tokens`) */
  reasoning_tokens: count('reasoning_tokens').optional(),
  batch: z.boolean({ error: typeError('batch', 'true or false') }).optional(),
  cost_usd: amount('cost_usd').optional(),
  gpu_seconds: amount('gpu_seconds').optional(),
  latency_ms: amount('latency_ms').optional(),
  status: z.enum(['ok', 'error'], { error: "status must be 'ok' or 'error'" }).optional(),
  attributes: z
    .record(z.string().max(128, { error: 'attribute names are at most 128 characters' }), z.string({ error: 'attribute values must be strings' }).max(1024, { error: 'attribute values are at most 1024 characters' }))
    .refine((a) => Object.keys(a).length <= 32, { error: 'attributes may have at most 32 keys' })
    .optional(),
}

function crossChecks(e: { input_tokens: number; output_tokens: number; cache_read_tokens?: number | undefined; cache_write_tokens?: number | undefined; reasoning_tokens?: number | undefined; timestamp: string }, ctx: z.RefinementCtx) {
  // zod runs this refinement even when fields failed their own checks: compare valid counts only
  const valid = (n: unknown) => n === undefined || (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0)
  const cached = (e.cache_read_tokens ?? 0) + (e.cache_write_tokens ?? 0)
  if (valid(e.input_tokens) && valid(e.cache_read_tokens) && valid(e.cache_write_tokens) && cached > e.input_tokens) {
    ctx.addIssue({ code: 'custom', path: ['cache_read_tokens'], message: 'cache_read_tokens + cache_write_tokens must not exceed input_tokens (cached tokens are part of input_tokens)' })
  }
  if (valid(e.output_tokens) && e.reasoning_tokens !== undefined && valid(e.reasoning_tokens) && e.reasoning_tokens > e.output_tokens) {
    ctx.addIssue({ code: 'custom', path: ['reasoning_tokens'], message: 'reasoning_tokens must not exceed output_tokens (reasoning tokens are part of output_tokens)' })
  }
  if (typeof e.timestamp === 'string' && Date.parse(e.timestamp) > Date.now() + MAX_FUTURE_MS) {
    ctx.addIssue({ code: 'custom', path: ['timestamp'], message: 'timestamp is more than 5 minutes in the future; check the clock of the emitting host' })
  }
  if (typeof e.timestamp === 'string' && Date.parse(e.timestamp) < MIN_TIMESTAMP_MS) {
    ctx.addIssue({ code: 'custom', path: ['timestamp'], message: 'timestamp is before 2000-01-01; check the clock of the emitting host' })
  }
}

/** Strict: unknown fields are rejected (default at the HTTP edge). */
export const UsageEventStrict = z.strictObject(usageEventFields).superRefine(crossChecks)
/** Lenient: unknown fields are dropped. */
export const UsageEventLenient = z.object(usageEventFields).superRefine(crossChecks)
export type UsageEvent = z.infer<typeof UsageEventStrict>
