/**
 * `burnwatch ui` in the distributed mode: the dashboard on a ClickHouse server, logged in with a
 * read-only login. The stages store the demo's data with the writing login; the dashboard alone
 * then serves the overview, the demo's alert page and its chart with the login that cannot write.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { createClient } from '@clickhouse/client'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { startStages, type RunningStages } from '../../services/cli/stages.ts'
import { DEMO_DEPLOYMENT, sendDemoData, writeDemoEvents } from '../../services/demo/run.ts'
import { ANALYST_ROLE } from '../../shared/clickhouse/roles.ts'
import { loadConfig } from '../../shared/config.ts'
import { openTestClickHouse } from '../support/clickhouse.ts'
import { testLogger } from '../support/pipeline.ts'
import { waitForDemoAlert } from '../support/demo.ts'
import { decodePng } from '../support/png.ts'

const target = inject('clickhouse')
const dir = mkdtempSync(join(tmpdir(), 'bw-ui-readonly-'))
const quiet = () => new Writable({ write: (_c, _e, cb) => cb() })
let stages: RunningStages | null = null
let ui: RunningStages | null = null
let login = { user: '', password: '', database: '' }
let env: Record<string, string> = {}
let alertId = ''
const cleanups: (() => Promise<unknown>)[] = []

beforeAll(async () => {
  if (target.url === null) throw new Error('this file runs on the server path (vitest project `server`)')
  if (target.analyst) {
    // the local server declares its read-only login in its config, for one database
    login = target.analyst
  } else {
    // a server with access management: a user with the analyst role (SELECT only), as an operator would create it
    login = { user: `bw_ui_${randomBytes(4).toString('hex')}`, password: randomBytes(12).toString('hex'), database: `t_${randomBytes(5).toString('hex')}` }
    const admin = await openTestClickHouse(target, { database: login.database })
    await admin.client.command({ query: `CREATE ROLE IF NOT EXISTS ${ANALYST_ROLE}` })
    await admin.client.command({ query: `GRANT SELECT ON ${login.database}.* TO ${ANALYST_ROLE}` })
    // generated hex names: safe to inline (DDL takes no query parameters)
    await admin.client.command({ query: `CREATE USER IF NOT EXISTS ${login.user} IDENTIFIED WITH sha256_password BY '${login.password}' DEFAULT DATABASE ${login.database}` })
    await admin.client.command({ query: `GRANT ${ANALYST_ROLE} TO ${login.user}` })
    cleanups.push(async () => {
      await admin.client.command({ query: `DROP USER IF EXISTS ${login.user}` })
      await admin.close()
    })
  }
  env = { CLICKHOUSE_URL: target.url, CLICKHOUSE_USER: target.user, CLICKHOUSE_PASSWORD: target.password, CLICKHOUSE_DATABASE: login.database, BURNWATCH_DATA_DIR: dir, KAFKA_BROKERS: '', PORT: '0', UI_PORT: '0', LOG_LEVEL: 'warn' }
  stages = await startStages(['ingest', 'aggregate', 'detect', 'notify'], loadConfig(env), testLogger(), { out: quiet() })
  expect((await sendDemoData(stages.ingestUrl!, writeDemoEvents(dir, 360))).rejected).toBe(0)
  const ch = stages.runtime.clickhouse.client
  alertId = await waitForDemoAlert(ch)
}, 240_000)

afterAll(async () => {
  await ui?.stop()
  await stages?.stop()
  // the local server's analyst database is shared with the analyst-queries test: leave it empty
  if (target.analyst && target.url) {
    const admin = createClient({ url: target.url, username: target.user, password: target.password })
    await admin.command({ query: `DROP DATABASE IF EXISTS ${login.database}` }).catch(() => {})
    await admin.close()
  }
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {})
})

describe('burnwatch ui on a ClickHouse server with a read-only login', () => {
  it("serves the overview, the demo's alert page and its chart, with a login that cannot write", async () => {
    // the login really is read-only
    const readOnly = createClient({ url: target.url!, username: login.user, password: login.password, database: login.database })
    try {
      await expect(readOnly.insert({ table: 'deployments', values: [{ deployment_id: 'x', team: 't', service: 's', timestamp: '2026-11-22 10:00:00.000' }], format: 'JSONEachRow' })).rejects.toMatchObject({ code: '497' })
    } finally {
      await readOnly.close()
    }

    ui = await startStages(['ui'], loadConfig({ ...env, CLICKHOUSE_USER: login.user, CLICKHOUSE_PASSWORD: login.password }), testLogger())
    const overview = await fetch(`${ui.uiUrl}/`)
    expect(overview.status).toBe(200)
    const html = await overview.text()
    expect(html).toContain(`href="/alerts/${encodeURIComponent(alertId)}"`)
    expect(html).not.toContain('Could not load this part')
    const page = await fetch(`${ui.uiUrl}/alerts/${encodeURIComponent(alertId)}`)
    expect(page.status).toBe(200)
    expect(await page.text()).toContain(DEMO_DEPLOYMENT)
    const chart = await fetch(`${ui.uiUrl}/alerts/${encodeURIComponent(alertId)}/chart.png`)
    expect(chart.status).toBe(200)
    expect(decodePng(Buffer.from(await chart.arrayBuffer())).width).toBe(1800)
  })
})
