/** An answer other than success, as the API sends it: JSON `{ error, message, ... }`. */
export interface ErrorBody {
  /** stable machine-readable code, e.g. `invalid_events` */
  error: string
  /** what was wrong and how to fix it; never echoes secrets */
  message: string
  [extra: string]: unknown
}

/** Why events were refused, the `reason` label of `burnwatch_events_rejected_total`. */
export type RejectReason = 'invalid' | 'malformed' | 'unauthorized' | 'forbidden' | 'too_large' | 'unsupported_media_type' | 'bus_unavailable'

export class HttpError extends Error {
  readonly status: number
  readonly body: ErrorBody
  readonly headers: Record<string, string>
  readonly reason: RejectReason | null
  /** items in the request, when known (for the log line and the rejected counter) */
  items: number | null
  /** items found invalid, when known */
  invalid: number | null

  constructor(status: number, error: string, message: string, opts: { extra?: Record<string, unknown>; headers?: Record<string, string>; reason?: RejectReason; items?: number; invalid?: number } = {}) {
    super(message)
    this.name = 'HttpError'
    this.status = status
    this.body = { error, message, ...opts.extra }
    this.headers = opts.headers ?? {}
    this.reason = opts.reason ?? null
    this.items = opts.items ?? null
    this.invalid = opts.invalid ?? null
  }
}
