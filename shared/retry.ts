/**
 * Retry policy for the whole project, as kafkajs's: only errors that say a retry can help are
 * retried, with jittered, capped exponential backoff (p-retry); a TypeError or any other
 * programming error is never retried. An error that says nothing either way (a third-party
 * library's) gets `unknownAttempts` attempts (default 5), then counts as permanent; the stage
 * runner retries it until the stage stops.
 */
import pRetry, { AbortError } from 'p-retry'

const PROGRAMMING = [TypeError, RangeError, ReferenceError, SyntaxError] as const
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT'])

/** true: retrying can help; false: it cannot; null: the error does not say. */
export function retriability(err: unknown): boolean | null {
  if (PROGRAMMING.some((t) => err instanceof t)) return false
  if (typeof err !== 'object' || err === null) return null
  const e = err as { retriable?: unknown; code?: unknown; name?: unknown }
  // BurnwatchError and every KafkaJS error carry the flag
  if (typeof e.retriable === 'boolean') return e.retriable
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return true
  return null
}

export interface RetryOptions {
  /** first delay, ms (default 200) */
  minTimeout?: number
  /** largest delay, ms (default 10 s) */
  maxTimeout?: number
  /** attempts for an error that does not say whether it is retriable (default 5) */
  unknownAttempts?: number
  /** stops retrying (the promise rejects with the signal's reason) */
  signal?: AbortSignal
  onFailedAttempt?: (err: unknown, attempt: number, willRetry: boolean) => void | Promise<void>
}

/** Runs `fn` until it succeeds, it fails with an error that cannot be retried, or `signal` aborts. */
export function retrying<T>(fn: (attempt: number) => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const unknownAttempts = o.unknownAttempts ?? 5
  const willRetry = (err: unknown, attempt: number) => {
    const r = retriability(err)
    return r === null ? attempt < unknownAttempts : r
  }
  return pRetry(
    async (attempt) => {
      try {
        return await fn(attempt)
      } catch (err) {
        // programming errors end the retry at once, whatever p-retry would have done
        if (PROGRAMMING.some((t) => err instanceof t)) throw new AbortError(err as Error)
        throw err
      }
    },
    {
      retries: Infinity,
      factor: 2,
      minTimeout: o.minTimeout ?? 200,
      maxTimeout: o.maxTimeout ?? 10_000,
      randomize: true,
      ...(o.signal ? { signal: o.signal } : {}),
      onFailedAttempt: async ({ error, attemptNumber }) => o.onFailedAttempt?.(error, attemptNumber, willRetry(error, attemptNumber)),
      shouldRetry: ({ error, attemptNumber }) => willRetry(error, attemptNumber),
    },
  )
}
