import { describe, expect, it } from 'vitest'
import { writeFileSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig, parseConfigFile, parseDuration, teamSettings } from '../../shared/config.ts'
import { ConfigError } from '../../shared/errors.ts'

const file = (text: string) => {
  const p = join(mkdtempSync(join(tmpdir(), 'bwcfg-')), 'burnwatch.yaml')
  writeFileSync(p, text)
  return p
}

describe('config', () => {
  it('defaults to the embedded mode', () => {
    const c = loadConfig({})
    expect(c.kafka.brokers).toBeNull()
    expect(c.clickhouse.url).toBeNull()
    expect(c.slack.botToken).toBeNull()
    expect(c.http.port).toBe(8787)
    expect(c.file.defaults.threshold_pct).toBe(20)
    expect(c.file.defaults.window).toBe(60_000)
    expect(c.v8FavorMemory).toBe(true)
  })

  it('BURNWATCH_V8_FAVOR_MEMORY: 0 keeps V8 defaults, anything but 0 or 1 is refused with what to set', () => {
    expect(loadConfig({ BURNWATCH_V8_FAVOR_MEMORY: '0' }).v8FavorMemory).toBe(false)
    expect(loadConfig({ BURNWATCH_V8_FAVOR_MEMORY: '1' }).v8FavorMemory).toBe(true)
    expect(() => loadConfig({ BURNWATCH_V8_FAVOR_MEMORY: 'yes' })).toThrow(/BURNWATCH_V8_FAVOR_MEMORY must be 1 .* or 0/)
  })

  it('parses the DESIGN.md example file', () => {
    const p = file(`
defaults:
  slack_channel: "#ai-spend"
  threshold_pct: 20
  window: 1m
teams:
  - name: search
    slack_channel: "#search-oncall"
    mention: "<!subteam^S012345>"
    threshold_pct: 25
    monthly_budget_usd: 20000
deployment_url_template: "https://deploys.example.com/{deployment_id}"
ingest_keys:
  - key_env: SEARCH_INGEST_KEY
    teams: [search]
prices:
  - model: my-finetune-7b
    input: 0.2
    output: 0.6
`)
    const c = loadConfig({ BURNWATCH_CONFIG: p, SEARCH_INGEST_KEY: 'k'.repeat(32), KAFKA_BROKERS: 'a:9092, b:9092' })
    expect(c.kafka.brokers).toEqual(['a:9092', 'b:9092'])
    expect(c.ingestKeys).toEqual([{ key: 'k'.repeat(32), keyEnv: 'SEARCH_INGEST_KEY', teams: ['search'] }])
    expect(teamSettings(c.file, 'search')).toMatchObject({ slackChannel: '#search-oncall', thresholdPct: 25, monthlyBudgetUsd: 20000 })
    expect(teamSettings(c.file, 'other')).toMatchObject({ slackChannel: '#ai-spend', thresholdPct: 20, mention: null })
    expect(c.secrets).toContain('k'.repeat(32))
  })

  it('lists every problem at once', () => {
    const p = file(`
defaults:
  window: soon
teams:
  - name: a
    threshold_pct: -3
  - name: a
ingest_keys:
  - key_env: MISSING_KEY
    teams: [a]
`)
    try {
      loadConfig({ BURNWATCH_CONFIG: p, PORT: 'eighty', CLICKHOUSE_URL: 'not a url' })
      expect.unreachable()
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError)
      const msg = (e as ConfigError).message
      expect(msg).toMatch(/PORT/)
      expect(msg).toMatch(/CLICKHOUSE_URL/)
      expect(msg).toMatch(/defaults.window must be a duration/)
      expect(msg).toMatch(/teams.0.threshold_pct/)
    }
    // the file-level problems are listed together too
    expect(() => parseConfigFile('teams: [{name: a}, {name: a, colour: red}]')).toThrow(/colour/)
  })

  it('reports a missing ingest key variable and a missing config file clearly', () => {
    const p = file('ingest_keys: [{ key_env: NOPE_KEY, teams: [x] }]')
    expect(() => loadConfig({ BURNWATCH_CONFIG: p })).toThrow(/NOPE_KEY is not set/)
    expect(() => loadConfig({ BURNWATCH_CONFIG: '/nonexistent/bw.yaml' })).toThrow(/cannot read the file \(ENOENT\)/)
  })

  it('parses durations', () => {
    expect(parseDuration('30s')).toBe(30_000)
    expect(parseDuration('1m')).toBe(60_000)
    expect(parseDuration('2h')).toBe(7_200_000)
    expect(parseDuration('soon')).toBeNull()
  })
})
