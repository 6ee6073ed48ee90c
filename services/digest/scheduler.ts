/**
 * Sends each configured team's weekly digest when it is due (the day and local time of the
 * config's `digest` schedule in the team's time zone, for the week before), checking once a
 * minute. Sending is exactly once per team and week (send.ts), so several processes running the
 * scheduler, or a restart, do not send twice.
 */
import type { ClickHouseClient } from '@clickhouse/client'
import { teamSettings, type AppConfig } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import { sendDigest, type DigestPoster } from './send.ts'
import { dueWeek } from './week.ts'

export interface DigestScheduler {
  /** one pass over the teams at `nowMs`; returns the teams sent to */
  tick(nowMs?: number): Promise<string[]>
  start(): void
  stop(): Promise<void>
}

export function createDigestScheduler(o: { client: ClickHouseClient; config: AppConfig; poster: DigestPoster; logger: Logger; everyMs?: number }): DigestScheduler {
  const log = o.logger.child({ component: 'digest-scheduler' })
  let timer: NodeJS.Timeout | null = null
  let running: Promise<unknown> = Promise.resolve()

  async function tick(nowMs = Date.now()): Promise<string[]> {
    const sent: string[] = []
    for (const t of o.config.file.teams) {
      const s = teamSettings(o.config.file, t.name)
      if (!s.digest.enabled) continue
      const week = dueWeek(nowMs, { ...s.digest, timezone: s.timezone })
      if (!week) continue
      try {
        const r = await sendDigest({ client: o.client, config: o.config, poster: o.poster, team: t.name, week, logger: o.logger })
        if (r.status === 'sent') sent.push(t.name)
      } catch (err) {
        log.error({ err, team: t.name, week: week.id }, 'weekly digest not sent; retrying at the next check')
      }
    }
    return sent
  }

  return {
    tick,
    start() {
      if (timer) return
      const run = () => {
        running = tick().catch((err: unknown) => log.error({ err }, 'digest check failed'))
      }
      run()
      timer = setInterval(run, o.everyMs ?? 60_000)
      timer.unref()
    },
    async stop() {
      if (timer) clearInterval(timer)
      timer = null
      await running
    },
  }
}
