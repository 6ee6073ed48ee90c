import { describe, expect, it } from 'vitest'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateTraffic, DEMO_SERIES } from '../../services/demo/traffic.ts'
import { AlertRecord } from '../../schemas/alert.ts'
import { runCli } from '../support/pipeline.ts'


describe('burnwatch backtest', () => {
  it('finds the injected break in recorded events, in event time, and writes alert records', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-backtest-'))
    // daytime: at night the series is below the 20 requests per window a series needs to page
    const start = Date.parse('2026-11-20T08:00:00Z')
    const events = [...generateTraffic({ start, minutes: 300, series: DEMO_SERIES, seed: 21, regression: { team: 'search', endpoint: 'POST /v1/summarize', at: start + 200 * 60_000, deployment_id: 'search-bad', outputFactor: 1.6 } })]
    const lines = events.map((e) => JSON.stringify(e))
    lines.splice(100, 0, '{"event_id": "broken"', JSON.stringify(events[5])) // one malformed line, one duplicate
    writeFileSync(join(dir, 'events.ndjson'), lines.join('\n') + '\n')
    const r = await runCli(['backtest', '--events', join(dir, 'events.ndjson'), '--alerts-out', join(dir, 'alerts.ndjson')], {})
    expect(r.code).toBe(0)
    expect(r.text).toMatch(new RegExp(`backtest: ${events.length} events \\(1 invalid, 1 duplicates, 0 late\\)`))
    expect(r.text).toMatch(/first invalid line: line 101: not valid JSON/)
    const alerts = readFileSync(join(dir, 'alerts.ndjson'), 'utf8').split('\n').filter(Boolean).map((l) => AlertRecord.parse(JSON.parse(l)))
    const firing = alerts.find((a) => a.status === 'firing' && a.endpoint === 'POST /v1/summarize' && a.signal === 'cost_per_request')
    expect(firing?.deployment_ids[0]).toBe('search-bad')
    expect(Math.abs(Date.parse(firing!.started_at) - (start + 200 * 60_000))).toBeLessThanOrEqual(5 * 60_000)
    expect(firing!.drivers.primary).toBe('output_tokens_per_request')
  })

  it('says which flag is missing and how to call it', async () => {
    const r = await runCli(['backtest', '--events', '/nonexistent.ndjson'], {})
    expect(r.code).toBe(1)
    expect(r.text).toMatch(/--alerts-out FILE.ndjson is required, e\.g\. burnwatch backtest --events/)
  })
})
