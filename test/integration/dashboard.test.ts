/**
 * The dashboard as a person sees it: `burnwatch start`'s stages (in-process bus, the test's
 * ClickHouse) load the demo's data through the ingest API; headless Chromium (Debian's, driven
 * by playwright-core) opens the overview, follows the demo's alert to its page and sees the chart
 * and the deployment. Screenshots are written for a person to look at (BURNWATCH_ARTIFACTS_DIR).
 * Also: names from events are text, never markup; outside input reaches SQL only as parameters.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { chromium, type Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { startStages, type RunningStages } from '../../services/cli/stages.ts'
import { createDashboardServer } from '../../services/dashboard/server.ts'
import { DEMO_DEPLOYMENT, sendDemoData, writeDemoEvents } from '../../services/demo/run.ts'
import { loadConfig } from '../../shared/config.ts'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { testLogger, waitFor } from '../support/pipeline.ts'
import { waitForDemoAlert } from '../support/demo.ts'
import { decodePng, writeArtifact } from '../support/png.ts'

const CHROMIUM = '/usr/bin/chromium'
const dir = mkdtempSync(join(tmpdir(), 'bw-dashboard-'))
let running: RunningStages | null = null
let browser: Browser | null = null
let ui = ''
let alertId = ''
let env: Record<string, string> = {}

beforeAll(async () => {
  writeFileSync(
    join(dir, 'burnwatch.yaml'),
    `teams:
  - name: search
    monthly_budget_usd: 900
deployment_url_template: "https://deploys.example.com/{deployment_id}"
`,
  )
  env = { ...testClickHouseEnv(inject('clickhouse')), PORT: '0', UI_PORT: '0', LOG_LEVEL: 'warn', BURNWATCH_CONFIG: join(dir, 'burnwatch.yaml') }
  const config = loadConfig(env)
  running = await startStages(['ingest', 'aggregate', 'detect', 'notify', 'ui'], config, testLogger(), { out: new Writable({ write: (_c, _e, cb) => cb() }) })
  ui = running.uiUrl!
  // the demo's data: 6 h of traffic, its deployment raising output tokens by 40% at 75%
  const sent = await sendDemoData(running.ingestUrl!, writeDemoEvents(dir, 360))
  expect(sent.rejected).toBe(0)
  // a hostile name from an event: must show as text
  const hostile = await fetch(`${running.ingestUrl}/v1/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ event_id: 'xss-1', timestamp: new Date(Date.now() - 5 * 60_000).toISOString(), team: 'growth', endpoint: '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>', model: "gpt-4o-mini'--", input_tokens: 10, output_tokens: 10 }),
  })
  expect(hostile.status).toBe(202)
  const ch = running.runtime.clickhouse.client
  // a team with two weeks of history: $100 the week before, $110 in the last 7 days
  const hour = (daysAgo: number) => new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 - daysAgo * 86_400_000).toISOString().slice(0, 19).replace('T', ' ')
  const row = (daysAgo: number, usd: number) => ({ team: 'archive', environment: 'staging', endpoint: 'batch-summaries', model: 'gpt-4o', provider: 'openai', hour: hour(daysAgo), requests: 1000, errors: 0, input_tokens: 0, output_tokens: 0, cache_read_tokens: 0, cache_write_tokens: 0, reasoning_tokens: 0, cost_usd: usd.toFixed(6), unpriced_requests: 0 })
  await ch.insert({ table: 'cost_hourly_env', values: [row(10, 60), row(9, 40), row(3, 70), row(2, 40)], format: 'JSONEachRow' })
  alertId = await waitForDemoAlert(ch)
  await waitFor('the hostile event stored', async () => {
    const rs = await ch.query({ query: `SELECT count() AS n FROM usage_events WHERE event_id = 'xss-1'`, format: 'JSONEachRow' })
    return Number((await rs.json<{ n: number }>())[0]!.n) === 1
  })
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] })
}, 240_000)

afterAll(async () => {
  await browser?.close()
  await running?.stop()
})

describe('dashboard (headless Chromium)', () => {
  it("shows spend now, budgets, the alert timeline and breakdowns; the demo's alert page has its chart and its deployment", async () => {
    const page = await browser!.newPage({ viewport: { width: 1280, height: 900 } })
    const scripts: string[] = []
    page.on('console', (m) => scripts.push(m.text()))
    const res = await page.goto(ui)
    expect(res?.status()).toBe(200)
    expect(res?.headers()['content-security-policy']).toContain("default-src 'none'")
    for (const h of ['Spend now', 'Budgets and their burn', 'Alert timeline', 'Teams', 'Environments', 'Endpoints', 'Models']) await expect(page.locator('h2', { hasText: h }).count()).resolves.toBe(1)
    const spend = await page.locator('#spend-now').innerText()
    expect(spend).toMatch(/Burn rate\s+\$[\d.,]+\/h/i)
    expect(spend).toMatch(/Projected month-end\s+\$[\d.,]+\s+range \$[\d.,]+ – \$[\d.,]+/i)
    expect(await page.locator('#budgets').innerText()).toContain('search')
    expect(await page.locator('#teams').innerText()).toMatch(/search[\s\S]*support[\s\S]*growth|search[\s\S]*growth/)
    expect(await page.locator('#models').innerText()).toContain('claude-3-5-haiku')
    // week over week: $110 against $100
    expect(await page.locator('#teams tr', { hasText: 'archive' }).innerText()).toMatch(/archive\s+\$110\.00\s+\$100\.00\s+\+10%/)
    const environments = await page.locator('#environments').innerText()
    expect(environments).toMatch(/staging\s+\$110\.00\s+\$100\.00\s+\+10%/)
    expect(environments).toMatch(/production\s+\$\d/)
    // the hostile endpoint is text: no image, no script ran
    expect(await page.locator('#endpoints').innerText()).toContain('<img src=x onerror=')
    expect(await page.evaluate(() => (globalThis as unknown as { __pwned?: number }).__pwned)).toBeUndefined()
    expect(await page.locator('main img').count()).toBe(0)
    const overview = writeArtifact('dashboard-overview.png', await page.screenshot({ fullPage: true }))

    // the alert timeline links to the demo's alert; its page shows the chart and the deployment
    const link = page.locator(`#alerts a[href="/alerts/${encodeURIComponent(alertId)}"]`)
    expect(await link.innerText()).toContain('POST /v1/summarize')
    await link.click()
    await page.waitForURL(`**/alerts/${encodeURIComponent(alertId)}`)
    expect(await page.locator('h1').innerText()).toMatch(/search · POST \/v1\/summarize · claude-3-5-haiku: cost per request \+\d/)
    const chart = page.locator('img.chart')
    await chart.evaluate((img) => { const i = img as unknown as { complete: boolean; addEventListener(e: string, f: () => void): void }; return i.complete ? null : new Promise<void>((r) => i.addEventListener('load', () => r())) })
    expect(await chart.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBe(1800)
    const deployments = await page.locator('#deployments').innerText()
    expect(deployments).toContain(DEMO_DEPLOYMENT)
    expect(deployments).toContain('search-api')
    expect(await page.locator(`#deployments a[href="https://deploys.example.com/${DEMO_DEPLOYMENT}"]`).count()).toBe(1)
    expect(await page.locator('#drivers').innerText()).toMatch(/output tokens\/request\s+primary/)
    expect(await page.locator('#deliveries').innerText()).toContain('delivered')
    const path = writeArtifact('dashboard-alert.png', await page.screenshot({ fullPage: true }))
    expect(scripts).toEqual([])
    console.log(`[dashboard test] screenshots: ${overview} ${path}`)

    // the chart itself is a valid PNG
    const png = await (await fetch(`${ui}/alerts/${encodeURIComponent(alertId)}/chart.png`)).arrayBuffer()
    expect(decodePng(Buffer.from(png)).height).toBe(720)
    await page.close()
  })

  it('`burnwatch ui` alone serves the same store without a bus (Kafka here is unreachable)', async () => {
    const alone = await startStages(['ui'], loadConfig({ ...env, KAFKA_BROKERS: '127.0.0.1:9' }), testLogger())
    try {
      const r = await fetch(`${alone.uiUrl}/alerts/${encodeURIComponent(alertId)}`)
      expect(r.status).toBe(200)
      expect(await r.text()).toContain(DEMO_DEPLOYMENT)
      expect(alone.ingestUrl).toBeNull()
    } finally {
      await alone.stop()
    }
  })

  it('a busy UI port: `start` pages on without the dashboard (one warning); `ui` alone fails', async () => {
    const busy = createServer()
    await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r))
    const port = String((busy.address() as AddressInfo).port)
    try {
      const withIngest = await startStages(['ingest', 'ui'], loadConfig({ ...env, UI_PORT: port }), testLogger())
      expect(withIngest.uiUrl).toBeNull()
      expect(withIngest.ingestUrl).not.toBeNull()
      await withIngest.stop()
      await expect(startStages(['ui'], loadConfig({ ...env, UI_PORT: port }), testLogger())).rejects.toMatchObject({ code: 'EADDRINUSE' })
    } finally {
      busy.close()
    }
  })

  it('only ever reads: every statement of every page is a SELECT (a read-only login is enough)', async () => {
    const real = running!.runtime.clickhouse.client
    const calls: string[] = []
    const recording = new Proxy(real, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown
        if (typeof v !== 'function') return v
        return (params: { query?: string; table?: string }) => {
          calls.push(`${String(prop)}: ${params?.query ?? params?.table ?? ''}`)
          return (v as (p: unknown) => unknown).call(target, params)
        }
      },
    })
    const dash = createDashboardServer({ client: recording, file: loadConfig(env).file, logger: testLogger(), port: 0, host: '127.0.0.1' })
    const { url } = await dash.start()
    try {
      for (const path of ['/', `/alerts/${encodeURIComponent(alertId)}`, `/alerts/${encodeURIComponent(alertId)}/chart.png`]) expect((await fetch(url + path)).status, path).toBe(200)
    } finally {
      await dash.stop()
    }
    expect(calls.length).toBeGreaterThan(8)
    expect(calls.filter((c) => !/^query: \s*SELECT\b/.test(c))).toEqual([])
  })

  it('answers 404 for an unknown alert (an ID with quotes and SQL is only a parameter), 405 for writes', async () => {
    const odd = encodeURIComponent("x' OR 1=1 --")
    const r = await fetch(`${ui}/alerts/${odd}`)
    expect(r.status).toBe(404)
    expect(await r.text()).toContain('No such page or alert')
    expect((await fetch(`${ui}/alerts/${odd}/chart.png`)).status).toBe(404)
    expect((await fetch(`${ui}/alerts/%E0%A4%A`)).status).toBe(400)
    expect((await fetch(`${ui}/`, { method: 'POST' })).status).toBe(405)
    expect((await fetch(`${ui}/healthz`)).status).toBe(200)
  })
})
