/** The operator commands through the real CLI entry: migrate, silence / silences, replay. */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { startStages, type RunningStages } from '../../services/cli/stages.ts'
import { loadConfig } from '../../shared/config.ts'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { makeEvent } from '../support/events.ts'
import { runCli, testLogger } from '../support/pipeline.ts'


let running: RunningStages | null = null
afterAll(async () => {
  await running?.stop()
})

describe('burnwatch CLI', () => {
  const env = testClickHouseEnv(inject('clickhouse'))

  it('migrate applies the migrations and says where', async () => {
    const r = await runCli(['migrate'], env)
    expect(r.code).toBe(0)
    expect(r.text).toMatch(/applied \d+ migration files \(\d+ statements\)/)
  })

  it('silence adds a silence that silences lists; bad input says how to fix it', async () => {
    const add = await runCli(['silence', '--team', 'search', '--endpoint', 'POST /v1/summarize', '--until', '2h', '--reason', 'load test'], env)
    expect(add.code).toBe(0)
    expect(add.text).toMatch(/^silenced [\s\S]*search/)
    const list = await runCli(['silences'], env)
    expect(list.code).toBe(0)
    expect(list.text).toContain('POST /v1/summarize')
    expect(list.text).toContain('load test')
    const bad = await runCli(['silence', '--team', 'search', '--reason', 'x'], env)
    expect(bad.code).toBe(1)
    expect(bad.text).toMatch(/--until is required, e\.g\./)
  })

  it('replay sends a recorded file to the ingest API at a rate and reports refusals', async () => {
    const config = loadConfig({ ...env, PORT: '0', LOG_LEVEL: 'warn' })
    running = await startStages(['ingest', 'aggregate'], config, testLogger(), { out: new Writable({ write: (_c, _e, cb) => cb() }) })
    const dir = mkdtempSync(join(tmpdir(), 'bw-cli-'))
    const file = join(dir, 'events.ndjson')
    writeFileSync(file, Array.from({ length: 300 }, (_, i) => JSON.stringify(makeEvent(i))).join('\n') + '\n')
    const r = await runCli(['replay', '--events', file, '--rate', '3000', '--url', running.ingestUrl!], env)
    expect(r.code).toBe(0)
    expect(r.text).toMatch(/replay: 300 events accepted by .* in \d+\.\d s .*; 0 rejected/)
    writeFileSync(file, JSON.stringify({ ...makeEvent(1), output_tokens: 'many' }) + '\n')
    const bad = await runCli(['replay', '--events', file, '--url', running.ingestUrl!], env)
    expect(bad.code).toBe(1)
    expect(bad.text).toMatch(/1 rejected \(first: HTTP 400: .*output_tokens/)
  })
})
