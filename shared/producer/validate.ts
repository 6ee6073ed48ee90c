/**
 * All-or-nothing validation of a batch, shared by the HTTP ingest API and the producer SDK:
 * every item is checked, and either all are valid or the caller gets one error per problem
 * (item index, field path, message) and sends nothing.
 */
import type { z } from 'zod'
import { UsageEventLenient, UsageEventStrict, fieldErrors, type UsageEvent } from '../../schemas/index.ts'
import { ValidationError } from '../errors.ts'

export interface ItemError {
  /** position of the item in the batch, from 0 */
  index: number
  /** dotted field path, `(root)` for the item itself */
  path: string
  message: string
}

export type BatchResult<T> = { ok: true; items: T[] } | { ok: false; errors: ItemError[]; invalid: number; total: number }

/** At most this many item errors are reported; the count in the message stays exact. */
export const MAX_REPORTED_ERRORS = 1000

function kindOf(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  return `a ${typeof v}`
}

export function validateBatch<T>(schema: z.ZodType<T>, items: readonly unknown[], noun = 'event'): BatchResult<T> {
  const out: T[] = []
  const errors: ItemError[] = []
  let invalid = 0
  items.forEach((item, index) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) {
      invalid++
      errors.push({ index, path: '(root)', message: `each ${noun} must be a JSON object, got ${kindOf(item)}` })
      return
    }
    const r = schema.safeParse(item)
    if (r.success) out.push(r.data)
    else {
      invalid++
      for (const e of fieldErrors(r.error)) errors.push({ index, ...e })
    }
  })
  if (invalid === 0) return { ok: true, items: out }
  return { ok: false, errors: errors.slice(0, MAX_REPORTED_ERRORS), invalid, total: items.length }
}

/** Strict rejects unknown fields; lenient drops them from the output. */
export function validateUsageEvents(items: readonly unknown[], opts: { strict: boolean }): BatchResult<UsageEvent> {
  return validateBatch<UsageEvent>(opts.strict ? UsageEventStrict : UsageEventLenient, items)
}

export function invalidBatchMessage(invalid: number, total: number, noun = 'events'): string {
  return `${invalid} of ${total} ${noun} are invalid; nothing was accepted. Fix them and resend the whole batch.`
}

/** Thrown by the SDK before anything is sent; `errors` holds one entry per problem. */
export class EventValidationError extends ValidationError {
  readonly errors: ItemError[]
  readonly invalid: number
  readonly total: number
  constructor(r: { errors: ItemError[]; invalid: number; total: number }) {
    const first = r.errors[0]
    super(`${invalidBatchMessage(r.invalid, r.total)}${first ? ` First: item ${first.index}, ${first.path}: ${first.message}` : ''}`)
    this.errors = r.errors
    this.invalid = r.invalid
    this.total = r.total
  }
}
