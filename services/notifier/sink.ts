/**
 * The page sink port: where pages go. Adapters are named after their technology:
 * `slack.ts` (Slack Web API) and `console.ts` (a stream plus an NDJSON file, the embedded mode).
 *
 * A sink retries what can succeed by retrying (rate limits, 5xx, network) inside `post`/`update`
 * and throws a `PageDeliveryError`: `retriable: false` for a permanent refusal (unknown
 * channel, revoked token…) that no retry fixes; `retriable: true` when it gave up waiting
 * (deadline) or was stopped, so the caller must not commit and will try again later.
 */
import type { KnownBlock } from '@slack/web-api'
import { DependencyError } from '../../shared/errors.ts'

export interface PageRef {
  /** channel as the sink knows it (Slack: the channel ID returned by chat.postMessage) */
  channel: string
  ts: string
}

export interface OutgoingPage {
  /** channel from the config (`#name` or an ID) */
  channel: string
  text: string
  blocks: KnownBlock[]
  /** set for a reply in a page's thread */
  threadTs?: string | null
  /** delivery keys (`deliveryKey`) this message carries, stored as message metadata */
  deliveries: string[]
}

export interface PostedPage extends PageRef {
  attempts: number
}

/** A file for a page's thread: the chart. */
export interface PageAttachment {
  filename: string
  title: string
  /** what the picture shows, for screen readers */
  altText: string
  data: Buffer
}

export interface PageSink {
  readonly kind: 'slack' | 'console'
  post(page: OutgoingPage, signal: AbortSignal): Promise<PostedPage>
  /** edits a posted message in place (idempotent: it sets the full content) */
  update(ref: PageRef, message: { text: string; blocks: KnownBlock[]; deliveries: string[] }, signal: AbortSignal): Promise<void>
  /**
   * Looks for a message posted since `sinceMs` carrying `key` in its metadata; used after a crash
   * (or an ambiguous failure) between sending and recording, so the same change is not posted twice.
   */
  findPosted(channel: string, key: string, sinceMs: number, signal: AbortSignal, threadTs?: string | null): Promise<PageRef | null>
  /**
   * Puts a file into the thread of the page `ref` (Slack: the external upload flow; console: a
   * file under the data folder). Returns where it went (a file ID or a path). Optional: a sink
   * without it pages in words only.
   */
  attach?(ref: PageRef, file: PageAttachment, signal: AbortSignal): Promise<{ location: string }>
  stop(): Promise<void>
}

export const METADATA_EVENT_TYPE = 'burnwatch_alert'

/**
 * `firing:alert-123`, `updated@1763805600000:alert-123`: the state change first (it has no `:`),
 * so any alert_id parses back. `change` tells the updates of one alert apart (changeOf).
 */
export function deliveryKey(alertId: string, status: string, change = ''): string {
  return `${status}${change ? `@${change}` : ''}:${alertId}`
}

/** Which state change a record is: '' for firing and resolved (one each per alert), its detected_at (ms) for an update. */
export function changeOf(a: { status: string; detected_at: string }): string {
  return a.status === 'updated' ? String(Date.parse(a.detected_at)) : ''
}

/** The delivery key of an alert record's state change. */
export function alertDeliveryKey(a: { alert_id: string; status: string; detected_at: string }): string {
  return deliveryKey(a.alert_id, a.status, changeOf(a))
}

export class PageDeliveryError extends DependencyError {
  readonly attempts: number
  constructor(message: string, opts: { code: string; retriable: boolean; attempts: number; cause?: unknown }) {
    super('slack', message, opts)
    this.attempts = opts.attempts
  }
}
