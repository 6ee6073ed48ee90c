/**
 * Turning a body into a list of items, before validation: one JSON object, a JSON array, or
 * NDJSON (one object per line; blank lines are skipped). Pure: no I/O.
 */
import { HttpError } from './http-error.ts'

export interface ParsedBatch {
  items: unknown[]
  /** NDJSON only: the 1-based line number of each item */
  lines?: number[]
}

export const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl'] as const
export const JSON_TYPE = 'application/json'

/** At most this many malformed NDJSON lines are listed. */
const MAX_LINE_ERRORS = 100

function malformed(message: string, extra?: Record<string, unknown>): HttpError {
  return new HttpError(400, 'malformed_body', message, { reason: 'malformed', ...(extra ? { extra } : {}) })
}

function jsonError(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export function parseJsonBatch(text: string, noun = 'event'): ParsedBatch {
  if (!text.trim()) throw malformed(`The request body is empty; send one ${noun} object or an array of them.`)
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    const lines = text.trim().split(/\r?\n/)
    const looksNdjson = lines.length > 1 && lines.every((l) => !l.trim() || /^\s*\{/.test(l))
    const hint = looksNdjson ? ' It looks like NDJSON: send it with Content-Type: application/x-ndjson.' : ''
    throw malformed(`The body is not valid JSON: ${jsonError(err)}.${hint} Send one ${noun} object or an array of them.`)
  }
  if (Array.isArray(value)) return { items: value }
  if (typeof value === 'object' && value !== null) return { items: [value] }
  throw malformed(`The body must be one ${noun} (a JSON object) or an array of them, not ${value === null ? 'null' : typeof value}.`)
}

export function parseNdjson(text: string, noun = 'event'): ParsedBatch {
  const items: unknown[] = []
  const lines: number[] = []
  const errors: { line: number; message: string }[] = []
  let bad = 0
  text.split(/\r?\n/).forEach((raw, i) => {
    if (!raw.trim()) return
    try {
      items.push(JSON.parse(raw))
      lines.push(i + 1)
    } catch (err) {
      bad++
      if (errors.length < MAX_LINE_ERRORS) errors.push({ line: i + 1, message: `not valid JSON: ${jsonError(err)}` })
    }
  })
  if (bad) {
    const first = errors[0]!
    throw malformed(`${bad} line(s) of the NDJSON body are not valid JSON (first: line ${first.line}, ${first.message}); nothing was accepted. Put one ${noun} object on each line and resend.`, { errors })
  }
  if (!items.length) throw malformed(`The NDJSON body has no ${noun}s; put one ${noun} object on each line.`)
  return { items, lines }
}

/** Parses by media type; callers check the type is one of JSON_TYPE / NDJSON_TYPES first. */
export function parseBatch(text: string, type: string, noun = 'event'): ParsedBatch {
  return (NDJSON_TYPES as readonly string[]).includes(type) ? parseNdjson(text, noun) : parseJsonBatch(text, noun)
}
