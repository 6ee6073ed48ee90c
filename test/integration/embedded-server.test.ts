/**
 * Embedded mode without chDB's file lock: while `burnwatch start` runs (no Kafka, no
 * CLICKHOUSE_URL), `silence`, `silences` and `doctor` work from other processes, and a ClickHouse
 * client reaches the store over HTTP on loopback with the read-only `analyst` login. After the
 * stop, the same data opens in-process again. Where no server can be launched, start falls back
 * to chDB in-process and says why.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ClickHouseLogLevel, createClient } from '@clickhouse/client'
import { startBurnwatch, type Child } from '../support/processes.ts'
import { freePort, waitFor } from '../support/pipeline.ts'

const children: Child[] = []
afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
})

async function cli(args: string[], env: Record<string, string>): Promise<{ code: number | null; text: string }> {
  const c = startBurnwatch(args, env)
  children.push(c)
  const code = await c.exited
  return { code, text: c.output() }
}

describe('burnwatch start in embedded mode', () => {
  it('serves its store on loopback: other commands and a read-only ClickHouse login work while it runs', { timeout: 120_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bw-embedded-'))
    const httpPort = await freePort()
    const env = { BURNWATCH_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'warn', CLICKHOUSE_HTTP_PORT: String(httpPort), CLICKHOUSE_TCP_PORT: String(await freePort()) }
    const start = startBurnwatch(['start'], env)
    children.push(start)
    await waitFor('start running', () => /Ctrl-C to stop/.test(start.output()), 60_000)
    const url = `http://127.0.0.1:${httpPort}`
    expect(start.output()).toContain(`served at ${url}`)

    const add = await cli(['silence', '--team', 'search', '--until', '2h', '--reason', 'while running'], env)
    expect(add, add.text).toMatchObject({ code: 0 })
    const list = await cli(['silences'], env)
    expect(list.text).toContain('while running')
    const doctor = await cli(['doctor'], env)
    expect(doctor.code, doctor.text).toBe(0)
    expect(doctor.text).toContain(`served by the running burnwatch start at ${url}`)

    const password = readFileSync(join(dataDir, 'clickhouse-server', 'analyst-password'), 'utf8').trim()
    const analyst = createClient({ url, username: 'analyst', password, database: 'burnwatch' })
    try {
      const rs = await analyst.query({ query: 'SELECT count() AS n FROM silences WHERE reason = {r:String}', query_params: { r: 'while running' }, format: 'JSONEachRow' })
      expect(Number((await rs.json<{ n: number }>())[0]?.n)).toBe(1)
      await expect(analyst.command({ query: 'TRUNCATE TABLE silences' })).rejects.toMatchObject({ code: '497' })
    } finally {
      await analyst.close()
    }
    const wrong = createClient({ url, username: 'analyst', password: 'not-the-password', log: { level: ClickHouseLogLevel.OFF } })
    await expect(wrong.query({ query: 'SELECT 1' })).rejects.toMatchObject({ code: '516' })
    await wrong.close()

    start.kill('SIGTERM')
    expect(await start.exited).toBe(0)
    expect(existsSync(join(dataDir, 'clickhouse-server', 'server.json'))).toBe(false)
    await expect(fetch(`${url}/ping`)).rejects.toThrow()
    // the same data, now through chDB in-process
    const after = await cli(['silences'], env)
    expect(after.text).toContain('while running')
  })

  it('falls back to chDB in-process, and says so, where no server can be launched', { timeout: 120_000 }, async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'bw-embedded-'))
    const env = { BURNWATCH_DATA_DIR: dataDir, PORT: '0', LOG_LEVEL: 'warn', BURNWATCH_CLICKHOUSE_LAUNCHER: 'none' }
    const start = startBurnwatch(['start'], env)
    children.push(start)
    await waitFor('start running', () => /Ctrl-C to stop/.test(start.output()), 60_000)
    expect(start.output()).toMatch(/cannot serve the embedded store on loopback: using chDB in-process/)
    expect(start.output()).toContain(`ClickHouse chDB in ${dataDir}`)
    start.kill('SIGTERM')
    expect(await start.exited).toBe(0)
  })
})
