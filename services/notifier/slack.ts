/**
 * Slack adapter of the page sink, on the real `@slack/web-api` WebClient.
 *
 * How the client is configured, and why:
 * - `rejectRateLimitedCalls: true` and `retryConfig: { retries: 0 }`: the client makes exactly
 *   one HTTP request per call and hands every failure back to this file, which owns the single
 *   retry loop below. Left to itself the client would sleep Retry-After inside the call, then
 *   add its own p-retry backoff on top, and re-post blindly after a 5xx or a timeout — which can
 *   post a page twice when Slack did post it but answered badly. Owning the loop lets us
 *   (a) honour Retry-After exactly, through one gate shared by every call of this sink (Slack
 *       limits are per method and workspace, so all pages wait, as the client's own queue
 *       pause would do),
 *   (b) back off with jitter on 5xx and network errors, up to a deadline, then give the batch
 *       back to the bus (retriable error: nothing is committed, nothing is lost),
 *   (c) before re-posting after an ambiguous failure (5xx, network error, timeout) look in the
 *       channel's history for our message metadata, so a page that did land is not posted again,
 *   (d) count attempts for `alert_deliveries.attempts` and metrics, and stop promptly on stop().
 * - Permanent refusals (`channel_not_found`, `not_in_channel`, `invalid_auth`, `token_revoked`,
 *   …) are never retried: one log line naming the team's channel and the fix, a metric, and a
 *   non-retriable error so the service records the page as failed and goes on with the next.
 * - The token never appears in logs: the client's own logger is routed to debug, and our log
 *   lines carry only the method, channel and Slack's error code.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import {
  ErrorCode,
  LogLevel,
  WebClient,
  type Logger as SlackLogger,
  type KnownBlock,
  type WebAPIHTTPError,
  type WebAPIPlatformError,
  type WebAPIRateLimitedError,
} from '@slack/web-api'
import type { Logger } from '../../shared/logger.ts'
import type { NotifierMetrics } from './metrics.ts'
import { METADATA_EVENT_TYPE, PageDeliveryError, type OutgoingPage, type PageAttachment, type PageRef, type PageSink, type PostedPage } from './sink.ts'

export interface SlackSinkOptions {
  token: string
  /** Web API base URL (GovSlack, tests); default https://slack.com/api/ */
  apiUrl?: string | null
  logger: Logger
  metrics: NotifierMetrics
  /** how long one call keeps retrying retriable failures before giving the batch back; default 120 s */
  retryDeadlineMs?: number
  /** first backoff after a 5xx or network error; doubles with full jitter up to maxBackoffMs */
  baseBackoffMs?: number
  maxBackoffMs?: number
  /** HTTP timeout of one request; default 15 s */
  requestTimeoutMs?: number
}

/** Slack error codes that a later retry can fix; every other `ok:false` error is permanent. */
const RETRIABLE_PLATFORM_ERRORS = new Set(['ratelimited', 'rate_limited', 'internal_error', 'fatal_error', 'service_unavailable', 'request_timeout', 'team_added_to_org'])
/** Of those, the ones where Slack may have done the work anyway. */
const AMBIGUOUS_PLATFORM_ERRORS = new Set(['internal_error', 'fatal_error', 'request_timeout'])

const HINTS: Record<string, string> = {
  channel_not_found: 'the channel does not exist or the bot cannot see it; check slack_channel for this team (or defaults.slack_channel) in the config',
  not_in_channel: 'the bot is not a member of the channel; invite it with /invite @burnwatch',
  is_archived: 'the channel is archived; unarchive it or route the team to another channel in the config',
  invalid_auth: 'SLACK_BOT_TOKEN is not valid; create a new bot token (xoxb-…) and set it',
  not_authed: 'no token was sent; set SLACK_BOT_TOKEN',
  account_inactive: 'the bot user or its workspace was deactivated; reinstall the Slack app',
  token_revoked: 'SLACK_BOT_TOKEN was revoked; reinstall the Slack app and set the new token',
  token_expired: 'SLACK_BOT_TOKEN expired; refresh it or use a non-rotating bot token',
  missing_scope: 'the bot token lacks a scope (needs chat:write, files:write for the charts, and channels:history for duplicate checks); add it and reinstall',
  msg_too_long: 'the message is too long for Slack',
  invalid_blocks: 'Slack rejected the message blocks',
  message_not_found: 'the page to edit no longer exists',
  cant_update_message: 'the page was posted by another app and cannot be edited',
}

type Failure =
  | { kind: 'rate_limited'; retryAfterSec: number; code: string }
  | { kind: 'retriable'; ambiguous: boolean; reason: 'server_error' | 'network'; code: string }
  | { kind: 'permanent'; code: string }

function classify(err: unknown): Failure {
  const e = err as { code?: string }
  switch (e.code) {
    case ErrorCode.RateLimitedError:
      return { kind: 'rate_limited', retryAfterSec: Math.max(0, (err as WebAPIRateLimitedError).retryAfter), code: 'ratelimited' }
    case ErrorCode.HTTPError: {
      const status = (err as WebAPIHTTPError).statusCode
      if (status >= 500 || status === 408) return { kind: 'retriable', ambiguous: true, reason: 'server_error', code: `http_${status}` }
      return { kind: 'permanent', code: `http_${status}` }
    }
    case ErrorCode.RequestError:
      // timeouts and resets may have reached Slack; a refused connection did not, but checking is cheap
      return { kind: 'retriable', ambiguous: true, reason: 'network', code: 'network_error' }
    case ErrorCode.PlatformError: {
      const code = String((err as WebAPIPlatformError).data?.error ?? 'unknown_error')
      if (RETRIABLE_PLATFORM_ERRORS.has(code)) return { kind: 'retriable', ambiguous: AMBIGUOUS_PLATFORM_ERRORS.has(code), reason: 'server_error', code }
      return { kind: 'permanent', code }
    }
    default:
      // a TypeError or anything unknown is a bug, not something a retry fixes
      return { kind: 'permanent', code: 'client_error' }
  }
}

/** The delivery keys of a message's metadata (a JSON array in a string: payload values are scalars). */
export function metadataDeliveries(value: unknown): string[] {
  if (typeof value !== 'string') return []
  try {
    const v: unknown = JSON.parse(value)
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []
  } catch {
    return []
  }
}

function slackLogger(logger: Logger): SlackLogger {
  // The client's own messages are chatty (one warn per failed HTTP request, which our loop
  // already reports); keep them at debug.
  const log = logger.child({ component: 'slack-web-api' })
  let level = LogLevel.DEBUG
  const fmt = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))).join(' ')
  return {
    debug: (...m: unknown[]) => log.debug(fmt(m)),
    info: (...m: unknown[]) => log.debug(fmt(m)),
    warn: (...m: unknown[]) => log.debug(fmt(m)),
    error: (...m: unknown[]) => log.debug(fmt(m)),
    setLevel: (l: LogLevel) => {
      level = l
    },
    getLevel: () => level,
    setName: () => {},
  }
}

export function createSlackSink(o: SlackSinkOptions): PageSink {
  const log = o.logger.child({ component: 'slack' })
  const client = new WebClient(o.token, {
    ...(o.apiUrl ? { slackApiUrl: o.apiUrl } : {}),
    rejectRateLimitedCalls: true,
    retryConfig: { retries: 0 },
    timeout: o.requestTimeoutMs ?? 15_000,
    logger: slackLogger(o.logger),
    logLevel: LogLevel.DEBUG,
  })
  const deadlineMs = o.retryDeadlineMs ?? 120_000
  const baseBackoff = o.baseBackoffMs ?? 500
  const maxBackoff = o.maxBackoffMs ?? 30_000
  /** shared rate-limit gate: no call before this time (ms) */
  let notBefore = 0
  /** channel names (`#x`) → IDs, learned from chat.postMessage answers */
  const channelIds = new Map<string, string>()

  async function waitGate(signal: AbortSignal) {
    const wait = notBefore - Date.now()
    if (wait > 0) await sleep(wait, undefined, { signal })
  }

  /**
   * Runs one Web API call with the retry policy above. `beforeRetry` runs before a new attempt
   * after an ambiguous failure and may return a result that makes the retry unnecessary.
   */
  async function call<T>(method: string, ctx: Record<string, unknown>, signal: AbortSignal, fn: () => Promise<T>, beforeRetry?: () => Promise<T | null>): Promise<{ result: T; attempts: number }> {
    const started = Date.now()
    let attempts = 0
    let backoff = baseBackoff
    let ambiguous = false
    for (;;) {
      if (signal.aborted) throw new PageDeliveryError(`stopped while calling Slack ${method}`, { code: 'stopped', retriable: true, attempts })
      try {
        await waitGate(signal)
        if (ambiguous && beforeRetry) {
          const found = await beforeRetry()
          if (found !== null) return { result: found, attempts }
        }
        attempts++
        return { result: await fn(), attempts }
      } catch (err) {
        if (err instanceof PageDeliveryError) throw err
        if (signal.aborted) throw new PageDeliveryError(`stopped while calling Slack ${method}`, { code: 'stopped', retriable: true, attempts, cause: err })
        const f = classify(err)
        if (f.kind === 'permanent') {
          o.metrics.permanentErrors.inc({ error: f.code })
          throw new PageDeliveryError(`Slack ${method} failed: ${f.code}${HINTS[f.code] ? ` (${HINTS[f.code]})` : ''}`, { code: f.code, retriable: false, attempts, cause: err })
        }
        let wait: number
        if (f.kind === 'rate_limited') {
          wait = f.retryAfterSec * 1000
          notBefore = Math.max(notBefore, Date.now() + wait)
          o.metrics.retries.inc({ reason: 'rate_limited', method })
        } else {
          ambiguous ||= f.ambiguous
          wait = Math.round(Math.random() * backoff)
          backoff = Math.min(backoff * 2, maxBackoff)
          o.metrics.retries.inc({ reason: f.reason, method })
        }
        if (Date.now() + wait - started > deadlineMs) {
          log.warn({ ...ctx, method, slack_error: f.code, attempts }, `Slack ${method} still failing (${f.code}) after ${attempts} attempts; handing the batch back to retry later`)
          throw new PageDeliveryError(`Slack ${method} kept failing (${f.code}) for ${Math.round((Date.now() - started) / 1000)} s`, { code: f.code, retriable: true, attempts, cause: err })
        }
        log.info({ ...ctx, method, slack_error: f.code, attempt: attempts, wait_ms: wait }, f.kind === 'rate_limited' ? `Slack rate limit on ${method}; waiting Retry-After ${f.retryAfterSec} s` : `Slack ${method} failed (${f.code}); retrying`)
        if (wait > 0) {
          try {
            await sleep(wait, undefined, { signal })
          } catch (e) {
            throw new PageDeliveryError(`stopped while calling Slack ${method}`, { code: 'stopped', retriable: true, attempts, cause: e })
          }
        }
      }
    }
  }

  async function resolveChannelId(channel: string, signal: AbortSignal): Promise<string | null> {
    if (/^[CGD][A-Z0-9]{6,}$/.test(channel)) return channel
    const known = channelIds.get(channel)
    if (known) return known
    const name = channel.replace(/^#/, '')
    let cursor: string | undefined
    do {
      const { result } = await call('conversations.list', { channel }, signal, () =>
        client.conversations.list({ types: 'public_channel,private_channel', exclude_archived: true, limit: 1000, ...(cursor ? { cursor } : {}) }),
      )
      const hit = result.channels?.find((c) => c.name === name)
      if (hit?.id) {
        channelIds.set(channel, hit.id)
        return hit.id
      }
      cursor = result.response_metadata?.next_cursor || undefined
    } while (cursor)
    return null
  }

  async function findPosted(channel: string, key: string, sinceMs: number, signal: AbortSignal, threadTs?: string | null): Promise<PageRef | null> {
    const id = await resolveChannelId(channel, signal)
    if (!id) return null
    const oldest = ((sinceMs - 60_000) / 1000).toFixed(6)
    const has = (m: { metadata?: { event_type?: string; event_payload?: Record<string, unknown> } }) =>
      m.metadata?.event_type === METADATA_EVENT_TYPE && metadataDeliveries(m.metadata.event_payload?.deliveries).includes(key)
    // replies live in the thread, not in the channel's history
    const { result } = threadTs
      ? await call('conversations.replies', { channel }, signal, () => client.conversations.replies({ channel: id, ts: threadTs, oldest, limit: 200, include_all_metadata: true }))
      : await call('conversations.history', { channel }, signal, () => client.conversations.history({ channel: id, oldest, limit: 200, include_all_metadata: true }))
    const hit = (result.messages ?? []).find((m) => has(m as never))
    return hit?.ts ? { channel: id, ts: hit.ts } : null
  }

  return {
    kind: 'slack',
    async post(page: OutgoingPage, signal: AbortSignal): Promise<PostedPage> {
      const sentAt = Date.now()
      const ctx = { channel: page.channel, thread_ts: page.threadTs ?? undefined }
      const metadata = { event_type: METADATA_EVENT_TYPE, event_payload: { deliveries: JSON.stringify(page.deliveries) } }
      const firstKey = page.deliveries[0]
      const { result, attempts } = await call<{ channel: string; ts: string } | { ok: boolean; channel?: string; ts?: string }>(
        'chat.postMessage',
        ctx,
        signal,
        () =>
          client.chat.postMessage({
            channel: page.channel,
            text: page.text,
            blocks: page.blocks,
            metadata,
            unfurl_links: false,
            unfurl_media: false,
            ...(page.threadTs ? { thread_ts: page.threadTs } : {}),
          }),
        firstKey === undefined
          ? undefined
          : async () => {
              // the previous attempt may have posted: look before posting again
              try {
                return await findPosted(page.channel, firstKey, sentAt, signal, page.threadTs)
              } catch (err) {
                if (err instanceof PageDeliveryError && !err.retriable) {
                  log.warn({ ...ctx, slack_error: err.code }, 'cannot check Slack history for an earlier attempt; posting again (a duplicate is possible)')
                  return null
                }
                throw err
              }
            },
      )
      const channel = 'channel' in result && result.channel ? result.channel : page.channel
      const ts = 'ts' in result ? result.ts : undefined
      if (!ts) throw new PageDeliveryError('Slack chat.postMessage answered ok without a ts', { code: 'no_ts', retriable: false, attempts })
      if (channel !== page.channel) channelIds.set(page.channel, channel)
      return { channel, ts, attempts }
    },
    async update(ref: PageRef, message: { text: string; blocks: KnownBlock[]; deliveries: string[] }, signal: AbortSignal): Promise<void> {
      await call('chat.update', { channel: ref.channel, ts: ref.ts }, signal, () =>
        client.chat.update({ channel: ref.channel, ts: ref.ts, text: message.text, blocks: message.blocks, metadata: { event_type: METADATA_EVENT_TYPE, event_payload: { deliveries: JSON.stringify(message.deliveries) } } }),
      )
    },
    findPosted: (channel, key, sinceMs, signal, threadTs) => findPosted(channel, key, sinceMs, signal, threadTs),
    /**
     * Slack's external upload flow through the client's filesUploadV2: files.getUploadURLExternal,
     * the bytes to the returned URL, files.completeUploadExternal with the channel and thread_ts.
     * A retry after an ambiguous failure may share the file twice; a duplicate picture is harmless.
     */
    async attach(ref: PageRef, file: PageAttachment, signal: AbortSignal): Promise<{ location: string }> {
      const { result } = await call('files.uploadV2', { channel: ref.channel, thread_ts: ref.ts }, signal, () =>
        client.filesUploadV2({ channel_id: ref.channel, thread_ts: ref.ts, file: file.data, filename: file.filename, title: file.title, alt_text: file.altText }),
      )
      const shared = (result.files as { files?: { id?: string }[] }[] | undefined)?.[0]?.files?.[0]?.id
      return { location: shared ?? 'uploaded' }
    },
    async stop() {},
  }
}
