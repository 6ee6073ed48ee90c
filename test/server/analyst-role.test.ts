/**
 * The analyst login on a ClickHouse server (DESIGN.md "ClickHouse": an analyst can read and not
 * write). Runs on the server path only (vitest project `server`): on chDB there are no logins
 * (test/integration/security.test.ts checks that the role is reported unsupported there).
 *
 * The login is the one the local server (infra/clickhouse/local-server.ts) declares in its users
 * config (SELECT on one database, readonly profile), or, on a server with access management
 * (CLICKHOUSE_URL, Testcontainers), a user given the analyst role that `ensureAnalystRole`
 * creates. Either way: a read returns the rows the writing login stored; an INSERT, a DROP and a
 * read of another database are refused with the server's access error, and nothing changed.
 */
import { randomBytes } from 'node:crypto'
import { ClickHouseLogLevel, createClient, type ClickHouseClient } from '@clickhouse/client'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { ANALYST_ROLE, ensureAnalystRole } from '../../shared/clickhouse/roles.ts'
import { openTestClickHouse } from '../support/clickhouse.ts'

const target = inject('clickhouse')
// READONLY (164): the readonly profile refuses the write; ACCESS_DENIED (497): the grants do
const ACCESS_ERROR = /ACCESS_DENIED|Not enough privileges|readonly mode/i
const ACCESS_CODES = ['164', '497']
// a recent timestamp: usage_events keeps 90 days (TTL), an older row is dropped on insert
const timestamp = new Date().toISOString().replace('T', ' ').replace('Z', '')
// the declared login's database is shared with the other server-path files: this file's rows carry a run suffix
const run = randomBytes(4).toString('hex')
const SEED = `analyst-seed-${run}`
/** the seed's team: its rows (and what the views derived from them) are deleted after, so the other files sharing the database count only their own */
const TEAM = `analyst-probe-${run}`
const WRITES = [`analyst-write-${run}`, `analyst-write-2-${run}`]
const OTHER = `other-db-${run}`

let admin: ClickHouseHandle
let other: ClickHouseHandle
let analyst: ClickHouseClient
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  if (target.url === null) throw new Error('this file runs on the server path (vitest project `server`)')
  let login: { user: string; password: string; database: string }
  if (target.analyst) {
    login = target.analyst
    admin = await openTestClickHouse(target, { database: login.database })
  } else {
    login = { user: `bw_analyst_${randomBytes(4).toString('hex')}`, password: randomBytes(12).toString('hex'), database: `t_${randomBytes(5).toString('hex')}` }
    admin = await openTestClickHouse(target, { database: login.database })
    const r = await ensureAnalystRole(admin)
    expect(r.status).toBe('applied')
    // generated hex names: safe to inline (DDL takes no query parameters)
    await admin.client.command({ query: `CREATE USER IF NOT EXISTS ${login.user} IDENTIFIED WITH sha256_password BY '${login.password}' DEFAULT DATABASE ${login.database}` })
    await admin.client.command({ query: `GRANT ${ANALYST_ROLE} TO ${login.user}` })
    await admin.client.command({ query: `SET DEFAULT ROLE ${ANALYST_ROLE} TO ${login.user}` })
    cleanups.push(() => admin.client.command({ query: `DROP USER IF EXISTS ${login.user}` }))
  }
  other = await openTestClickHouse(target)
  await admin.client.insert({ table: 'usage_events', values: [{ event_id: SEED, team: TEAM, endpoint: 'POST /v1/summarize', model: 'gpt-4o-mini', timestamp }], format: 'JSONEachRow' })
  await other.client.insert({ table: 'usage_events', values: [{ event_id: OTHER, team: TEAM, timestamp }], format: 'JSONEachRow' })
  analyst = createClient({ url: target.url, username: login.user, password: login.password, database: login.database, log: { level: ClickHouseLogLevel.OFF } })
}, 120_000)

async function deleteTeam(h: ClickHouseHandle): Promise<void> {
  const rs = await h.client.query({
    query: "SELECT table FROM system.columns WHERE database = currentDatabase() AND name = 'team' AND table IN (SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree')",
    format: 'JSONEachRow',
  })
  for (const { table } of await rs.json<{ table: string }>()) {
    await h.client.command({ query: 'ALTER TABLE {t:Identifier} DELETE WHERE team = {team:String}', query_params: { t: table, team: TEAM }, clickhouse_settings: { mutations_sync: '2' } })
  }
}

afterAll(async () => {
  await analyst?.close()
  for (const c of cleanups) await c()
  // the seeds and everything the materialized views derived from them: every MergeTree-family table with a team column
  for (const h of [admin, other]) if (h) await deleteTeam(h)
  await other?.close()
  await admin?.close()
})

/** This run's event IDs in usage_events (of `db`, else the login's database). */
const eventIds = async (c: ClickHouseClient, db?: string) =>
  (
    await (
      await c.query({ query: `SELECT event_id FROM ${db ? `${db}.` : ''}usage_events WHERE endsWith(event_id, {run:String}) ORDER BY event_id`, query_params: { run: `-${run}` }, format: 'JSONEachRow' })
    ).json<{ event_id: string }>()
  ).map((r) => r.event_id)
const rowCount = async (c: ClickHouseClient) => Number((await (await c.query({ query: 'SELECT count() AS n FROM usage_events', format: 'JSONEachRow' })).json<{ n: string }>())[0]?.n)

async function refused(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  const err = await p.then(
    () => null,
    (e: unknown) => e as { code?: string; message?: string },
  )
  expect(err, 'the server accepted what the analyst login must not do').not.toBeNull()
  expect(err!.message).toMatch(ACCESS_ERROR)
  expect(ACCESS_CODES).toContain(String(err!.code))
  return { code: String(err!.code), message: err!.message ?? '' }
}

describe('analyst login on a ClickHouse server', () => {
  it('reads the rows the writing login stored', async () => {
    expect(await eventIds(analyst)).toEqual([SEED])
    const rs = await analyst.query({ query: 'SELECT team, endpoint FROM usage_events WHERE event_id = {id:String}', query_params: { id: SEED }, format: 'JSONEachRow' })
    expect(await rs.json()).toEqual([{ team: TEAM, endpoint: 'POST /v1/summarize' }])
  })

  it('cannot insert: refused with the access error and nothing stored', async () => {
    await refused(analyst.insert({ table: 'usage_events', values: [{ event_id: WRITES[0], team: 'search', timestamp }], format: 'JSONEachRow' }))
    await refused(analyst.command({ query: 'INSERT INTO usage_events (event_id, team, timestamp) VALUES ({id:String}, \'search\', now64(3))', query_params: { id: WRITES[1] } }))
    expect(await eventIds(admin.client)).toEqual([SEED])
  })

  it('cannot drop or alter: refused and the table unchanged', async () => {
    const before = await rowCount(admin.client)
    await refused(analyst.command({ query: 'DROP TABLE usage_events' }))
    await refused(analyst.command({ query: 'ALTER TABLE usage_events DELETE WHERE event_id = {id:String}', query_params: { id: SEED }, clickhouse_settings: { mutations_sync: '1' } }))
    expect(await eventIds(admin.client)).toEqual([SEED])
    expect(await rowCount(admin.client)).toBe(before)
  })

  it('cannot read another database', async () => {
    expect(await eventIds(admin.client, other.database)).toEqual([OTHER])
    await refused(eventIds(analyst, other.database))
  })
})
