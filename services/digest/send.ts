/**
 * Sending a team's weekly digest to its Slack channel once per team and ISO week, recorded in the
 * `digests` table (migration 040):
 *   1. when the latest row of (team, week) is `sent` or `claimed`, it was sent (or is being sent): skip;
 *   2. write a `claimed` row with a fresh claim id, read the rows back, and go on only if ours is
 *      the first claim since the last `failed` (two senders racing: one wins);
 *   3. post to Slack, then write `sent` with the message ts; a post that fails writes `failed`,
 *      which lets the next attempt (the scheduler's next tick) claim the week again.
 * A crash between 2 and 3 leaves the week claimed and unsent: it is never sent twice, and
 * `burnwatch digest --week W --send --force` sends it by hand.
 */
import { randomUUID } from 'node:crypto'
import type { ClickHouseClient } from '@clickhouse/client'
import { WebClient, LogLevel } from '@slack/web-api'
import { teamSettings, type AppConfig } from '../../shared/config.ts'
import { DependencyError, ValidationError } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import { buildDigest } from './build.ts'
import { renderDigest } from './render.ts'
import type { Week } from './week.ts'

export type DigestOutcome = { status: 'sent'; channel: string; ts: string; total: string } | { status: 'already_sent'; recorded: string }

export interface DigestPoster {
  post(channel: string, text: string): Promise<{ ts: string; channel: string }>
}

export function createSlackDigestPoster(slack: AppConfig['slack']): DigestPoster {
  if (!slack.botToken) throw new ValidationError('sending a digest needs Slack: set SLACK_BOT_TOKEN (and SLACK_API_URL for a non-default Web API), or run without --send to print it')
  const client = new WebClient(slack.botToken, { ...(slack.apiUrl ? { slackApiUrl: slack.apiUrl } : {}), retryConfig: { retries: 3, factor: 2, minTimeout: 500 }, logLevel: LogLevel.ERROR })
  return {
    async post(channel, text) {
      try {
        const r = await client.chat.postMessage({ channel, text, mrkdwn: true, unfurl_links: false })
        return { ts: String(r.ts), channel: String(r.channel ?? channel) }
      } catch (err) {
        // the message of a Web API error names the method and Slack's error code, never the token
        throw new DependencyError('slack', `posting the digest to ${channel} failed: ${err instanceof Error ? err.message : String(err)}. Check that the bot is in the channel and its token is valid (burnwatch doctor).`, { code: 'SLACK_POST_FAILED', retriable: false, cause: err })
      }
    },
  }
}

async function recorded(client: ClickHouseClient, team: string, week: string): Promise<{ status: string; claim_id: string }[]> {
  const rs = await client.query({
    query: `SELECT status, claim_id FROM digests WHERE team = {team:String} AND week = {week:String} ORDER BY recorded_at, claim_id`,
    query_params: { team, week },
    format: 'JSONEachRow',
  })
  return rs.json<{ status: string; claim_id: string }>()
}

async function record(client: ClickHouseClient, row: { team: string; week: string; status: string; channel: string; message_ts: string; total_usd: string; claim_id: string }) {
  // insert_deduplicate = 0: two identical rows must both land (a replay of a claim is a new claim)
  await client.insert({ table: 'digests', values: [row], format: 'JSONEachRow', clickhouse_settings: { insert_deduplicate: 0 } })
}

export async function sendDigest(o: { client: ClickHouseClient; config: AppConfig; poster: DigestPoster; team: string; week: Week; logger: Logger; force?: boolean }): Promise<DigestOutcome> {
  const { client, team, week } = o
  const log = o.logger.child({ component: 'digest', team, week: week.id })
  // 1.
  const before = await recorded(client, team, week.id)
  const done = before.find((r) => r.status === 'sent') ?? before.at(-1)
  if (done && done.status !== 'failed' && !o.force) return { status: 'already_sent', recorded: done.status }
  // 2.
  const settings = teamSettings(o.config.file, team)
  const claim = randomUUID()
  await record(client, { team, week: week.id, status: 'claimed', channel: settings.slackChannel, message_ts: '', total_usd: '0', claim_id: claim })
  if (!o.force) {
    const rows = await recorded(client, team, week.id)
    const sinceFailure = rows.slice(rows.findLastIndex((r) => r.status === 'failed') + 1)
    if (sinceFailure.some((r) => r.status === 'sent') || sinceFailure.find((r) => r.status === 'claimed')?.claim_id !== claim) return { status: 'already_sent', recorded: 'claimed' }
  }
  // 3.
  const digest = await buildDigest(client, o.config.file, team, week)
  let posted: { ts: string; channel: string }
  try {
    posted = await o.poster.post(settings.slackChannel, renderDigest(digest))
  } catch (err) {
    await record(client, { team, week: week.id, status: 'failed', channel: settings.slackChannel, message_ts: '', total_usd: digest.total, claim_id: claim })
    throw err
  }
  await record(client, { team, week: week.id, status: 'sent', channel: posted.channel, message_ts: posted.ts, total_usd: digest.total, claim_id: claim })
  log.info({ channel: settings.slackChannel, ts: posted.ts }, 'weekly digest sent')
  return { status: 'sent', channel: settings.slackChannel, ts: posted.ts, total: digest.total }
}
