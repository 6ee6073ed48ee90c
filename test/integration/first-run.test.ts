/**
 * A newcomer's first run, as the README says: clone, `npm install`, `npm start` (embedded: no
 * Kafka, ClickHouse or Slack needed), send events over HTTP, see a page for a regression, stop
 * with SIGTERM and get exit code 0.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { REPO_ROOT } from '../support/processes.ts'
import { freePort, waitFor } from '../support/pipeline.ts'
import { generateTraffic, DEMO_SERIES } from '../../services/demo/traffic.ts'
import { replay } from '../../services/cli/replay.ts'

let proc: ChildProcess | null = null
afterAll(() => {
  proc?.kill('SIGKILL')
})


describe('first run on an old Node.js', () => {
  // Debian's nodejs package (Node 20 on these machines) at /usr/bin, as a newcomer has it
  const OLD_PATH = '/usr/bin:/bin'
  const version = () => execFileSync('/usr/bin/node', ['--version'], { encoding: 'utf8' }).trim()

  it.each([
    ['npm start', ['npm', 'start']],
    ['npx burnwatch', ['npx', 'burnwatch', 'start']],
  ])('%s says which Node.js is needed and how to get it, before any TypeScript loads', (_name, [cmd, ...args]) => {
    const v = version()
    if (Number(v.slice(1).split('.')[0]) >= 22) throw new Error(`this test needs an old Node.js at /usr/bin/node (Debian's nodejs); it is ${v}`)
    const r = spawnSync(cmd!, args, { cwd: REPO_ROOT, env: { ...process.env, PATH: OLD_PATH, npm_config_update_notifier: 'false' }, encoding: 'utf8', timeout: 60_000 })
    const out = r.stdout + r.stderr
    expect(r.status, out).not.toBe(0)
    expect(out).toContain(`burnwatch needs Node.js 22.18 or newer (24 LTS recommended); this is Node.js ${v}`)
    expect(out).toContain('nvm install 24')
    expect(out).toContain('https://nodejs.org/en/download')
    expect(out).not.toContain('ERR_UNKNOWN_FILE_EXTENSION')
  })
})

describe('first run from a fresh clone', () => {
  it('npm install, npm start, events over HTTP, a page, SIGTERM → exit 0', { timeout: 420_000 }, async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'bw-clone-')), 'burnwatch')
    execFileSync('git', ['clone', '--quiet', REPO_ROOT, dir])
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], { cwd: dir, stdio: 'ignore', timeout: 300_000 })

    const port = await freePort()
    const uiPort = await freePort()
    // `npm start` runs this script; npm itself always reports a signal as its own end (code null),
    // so the test runs the script directly to see the exit code of Burnwatch itself
    const script = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start
    proc = spawn('sh', ['-c', `exec ${script}`], { cwd: dir, env: { ...process.env, PORT: String(port), UI_PORT: String(uiPort), LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    proc.stdout!.on('data', (d: Buffer) => (out += d.toString()))
    proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
    const exited = new Promise<number | null>((resolve) => proc!.on('exit', (code) => resolve(code)))
    await waitFor('the ingest API and the dashboard to listen', () => out.includes('Ctrl-C to stop'), 120_000).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${out}`)
    })
    expect(out).toContain(`http://127.0.0.1:${port}`)
    expect(out).toMatch(/curl -X POST/)
    // the dashboard is up beside the ingest API
    expect(out).toContain(`Dashboard: http://127.0.0.1:${uiPort}`)
    expect((await fetch(`http://127.0.0.1:${uiPort}/`)).status).toBe(200)
    const url = `http://127.0.0.1:${port}`

    // a malformed event: 400 that names the field
    const bad = await fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ event_id: 'x', timestamp: new Date().toISOString(), team: 'search', endpoint: 'e', model: 'm', input_tokens: -3, output_tokens: 1 }) })
    expect(bad.status).toBe(400)
    const body = (await bad.json()) as { errors: { index: number; path: string; message: string }[] }
    expect(body.errors).toEqual([expect.objectContaining({ index: 0, path: 'input_tokens', message: expect.stringMatching(/input_tokens/) })])

    // four hours of traffic; after three, a deployment raises output tokens per request by 60%
    const minutes = 240
    const start = Math.floor(Date.now() / 60_000) * 60_000 - (minutes + 5) * 60_000
    const file = join(dir, 'traffic.ndjson')
    writeFileSync(file, [...generateTraffic({ start, minutes, series: DEMO_SERIES, seed: 5, regression: { team: 'search', endpoint: 'POST /v1/summarize', at: start + 180 * 60_000, deployment_id: 'search-api-regressed', outputFactor: 1.6 } })].map((e) => JSON.stringify(e)).join('\n') + '\n')
    const r = await replay({ eventsPath: file, url, rate: 0, batchSize: 1000 })
    expect(r.rejected).toBe(0)

    await waitFor('a page for the regression', () => /page → #ai-spend[\s\S]*search[\s\S]*search-api-regressed/.test(out), 90_000).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${out.slice(-4000)}`)
    })
    proc.kill('SIGTERM')
    expect(await exited).toBe(0)
    proc = null
  })
})
