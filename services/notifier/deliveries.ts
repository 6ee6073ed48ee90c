/**
 * `alert_deliveries` in ClickHouse: the notifier's memory of what it paged, the source of truth
 * for "was this state change delivered?" and "which thread is this alert's page?" across
 * restarts and replicas. Rows are appended, never updated; per state change (alert_id, status,
 * change) the row with the latest delivered_at is the current one (a 'sending' intent, then
 * delivered|failed).
 * Query builders return `{ query, query_params }` and are tested as such.
 */
import type { ClickHouseClient } from '@clickhouse/client'
import type { AlertRecord } from '../../schemas/alert.ts'

export type Outcome = 'delivered' | 'silenced' | 'failed' | 'sending'

export interface DeliveryRow {
  alert_id: string
  status: AlertRecord['status']
  /** which update ('' for firing and resolved): sink.ts changeOf */
  change: string
  team: string
  /** Slack channel ID once known (else the configured channel) */
  channel: string
  /** the channel as configured, `#name` */
  channel_name: string
  message_ts: string
  thread_ts: string
  outcome: Outcome
  error: string
  attempts: number
  /** ISO-8601 */
  delivered_at: string
  alert_json: string
  group_key: string
}

export interface Built {
  query: string
  query_params: Record<string, unknown>
}

const COLUMNS = ['team', 'channel', 'channel_name', 'message_ts', 'thread_ts', 'outcome', 'error', 'attempts', 'alert_json', 'group_key'] as const

/**
 * The current row per state change (alert_id, status, change) among the rows matching `where`, optionally filtered
 * by its current outcome. The inner aliases are prefixed so no alias shadows a column in WHERE.
 */
function latest(where: string, outcome: 'delivered' | null): string {
  const inner = `SELECT alert_id, status, change, ${COLUMNS.map((c) => `argMax(${c}, delivered_at) AS last_${c}`).join(', ')}, max(delivered_at) AS last_at
      FROM alert_deliveries WHERE ${where} GROUP BY alert_id, status, change`
  return `SELECT alert_id, status, change, ${COLUMNS.map((c) => `last_${c} AS ${c}`).join(', ')}, toUnixTimestamp64Milli(last_at) AS delivered_ms
    FROM (${inner})${outcome ? ` WHERE last_outcome = '${outcome}'` : ''}
    ORDER BY last_at`
}

/** The current row of every state change of these alerts. */
export function latestByAlertIdsQuery(alertIds: readonly string[]): Built {
  return { query: latest('alert_id IN {ids:Array(String)}', null), query_params: { ids: [...alertIds] } }
}

/** The delivered state changes threaded under one page (the page's own series included). */
export function pageMembersQuery(channel: string, threadTs: string): Built {
  return { query: latest('channel = {channel:String} AND thread_ts = {thread_ts:String}', 'delivered'), query_params: { channel, thread_ts: threadTs } }
}

/** Pages (firing deliveries) of a group key posted since `sinceMs`, to attach series breaking a little later. */
export function recentGroupPagesQuery(groupKey: string, sinceMs: number): Built {
  return {
    query: latest(`group_key = {group_key:String} AND status = 'firing' AND delivered_at >= fromUnixTimestamp64Milli({since:Int64}, 'UTC')`, 'delivered'),
    query_params: { group_key: groupKey, since: sinceMs },
  }
}

interface RawRow extends Omit<DeliveryRow, 'delivered_at' | 'attempts'> {
  delivered_ms: number | string
  attempts: number | string
}

export interface DeliveryStore {
  latest(alertIds: readonly string[]): Promise<DeliveryRow[]>
  pageMembers(channel: string, threadTs: string): Promise<DeliveryRow[]>
  recentGroupPages(groupKey: string, sinceMs: number): Promise<DeliveryRow[]>
  record(rows: readonly DeliveryRow[]): Promise<void>
}

export function createClickHouseDeliveryStore(client: ClickHouseClient): DeliveryStore {
  const select = async (b: Built): Promise<DeliveryRow[]> => {
    const rs = await client.query({ ...b, format: 'JSONEachRow' })
    const rows = await rs.json<RawRow>()
    return rows.map(({ delivered_ms, attempts, ...r }) => ({ ...r, attempts: Number(attempts), delivered_at: new Date(Number(delivered_ms)).toISOString() }))
  }
  return {
    latest: (ids) => (ids.length ? select(latestByAlertIdsQuery(ids)) : Promise.resolve([])),
    pageMembers: (channel, ts) => select(pageMembersQuery(channel, ts)),
    recentGroupPages: (k, since) => select(recentGroupPagesQuery(k, since)),
    async record(rows) {
      if (!rows.length) return
      await client.insert({ table: 'alert_deliveries', values: rows.map((r) => ({ ...r })), format: 'JSONEachRow' })
    },
  }
}
