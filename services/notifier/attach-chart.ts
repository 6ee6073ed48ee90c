/**
 * A fresh chart in the page's thread with every state change (the page, each update, the
 * resolution): read the series around the break, render it, hand it to the sink's `attach`.
 *
 * It runs after the delivery is recorded, and it is best effort: a chart that cannot be made or
 * uploaded is one warning in the log and never repeats or fails a page, and it waits for Slack
 * at most CHART_DEADLINE_MS (a crash between the record and the upload leaves that state change
 * without its chart).
 */
import type { ClickHouseClient } from '@clickhouse/client'
import type { AlertRecord } from '../../schemas/alert.ts'
import { errorMessage } from '../../shared/errors.ts'
import type { Logger } from '../../shared/logger.ts'
import { renderChart, seriesTitle, signalOf } from './chart.ts'
import { loadChartInput } from './chart-data.ts'
import { formatPct } from './render.ts'
import type { PageRef, PageSink } from './sink.ts'

/** A grouped page gets the charts of its first series only. */
export const MAX_CHARTS_PER_MESSAGE = 3
/** How long one chart may wait for Slack (its retries included) before the notifier goes on without it. */
export const CHART_DEADLINE_MS = 20_000

export interface ChartAttacher {
  attach(alerts: readonly AlertRecord[], ref: PageRef, signal: AbortSignal): Promise<void>
}

export function createChartAttacher(o: { client: ClickHouseClient; sink: PageSink; logger: Logger }): ChartAttacher {
  const log = o.logger.child({ component: 'charts' })
  return {
    async attach(alerts, ref, signal) {
      const attach = o.sink.attach?.bind(o.sink)
      if (!attach) return
      for (const a of alerts.slice(0, MAX_CHARTS_PER_MESSAGE)) {
        if (signal.aborted) return
        // a chart never holds the next pages back for long, even while Slack is failing
        const limited = AbortSignal.any([signal, AbortSignal.timeout(CHART_DEADLINE_MS)])
        try {
          const input = await loadChartInput(o.client, a)
          if (!input.points.length) {
            log.debug({ alert_id: a.alert_id }, 'no windows stored for this series yet; page sent without a chart')
            continue
          }
          const chart = await renderChart(input)
          const what = `${seriesTitle(a)}: ${signalOf(a).label} ${formatPct(a.change_pct)} (${a.status})`
          const { location } = await attach(
            ref,
            {
              filename: `burnwatch-${a.alert_id}-${a.status}.png`,
              title: what,
              altText: `Chart of ${what}: the series, its baseline band, the change point at ${a.started_at} and the deployments near it`,
              data: chart.png,
            },
            limited,
          )
          log.info({ alert_id: a.alert_id, status: a.status, channel: ref.channel, thread_ts: ref.ts, location }, 'chart attached to the page thread')
        } catch (err) {
          if (signal.aborted) return
          log.warn({ alert_id: a.alert_id, status: a.status, channel: ref.channel, err: errorMessage(err) }, `could not attach the chart (the page itself is delivered): ${errorMessage(err)}`)
        }
      }
    },
  }
}
