/**
 * The security checks are vitest tests (test/integration/security.test.ts on chDB, and the
 * analyst login on a local ClickHouse server, test/server/analyst-role.test.ts; part of
 * `npm test`); the drill runs them against its own broker and summarizes the outcome in a row.
 */
import { spawn } from 'node:child_process'
import { REPO_ROOT } from '../support/processes.ts'
import { result, type DrillResult } from './lib.ts'

export async function securitySummary(brokers: string[]): Promise<DrillResult> {
  const out = await new Promise<{ code: number | null; text: string }>((resolve) => {
    const p = spawn(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--project', 'integration', '--project', 'server', 'test/integration/security.test.ts', 'test/server/analyst-role.test.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, KAFKA_BROKERS: brokers.join(','), NO_COLOR: '1', FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let text = ''
    p.stdout.on('data', (d: Buffer) => (text += d.toString()))
    p.stderr.on('data', (d: Buffer) => (text += d.toString()))
    // eslint-disable-next-line no-control-regex
    p.on('exit', (code) => resolve({ code, text: text.replace(/\u001b\[[0-9;]*m/g, '') }))
  })
  const tests = /Tests\s+(.*)/.exec(out.text)?.[1]?.trim() ?? 'no summary'
  const failed = [...out.text.matchAll(/(?:×|FAIL)\s+(.+)/g)].map((m) => m[1]!.trim()).slice(0, 5)
  const notes = [`security.test.ts + analyst-role.test.ts: ${tests} (403 across teams, no secret in any output, analyst login read-only on a server, parameters only + static scan)`, ...failed]
  return result('security checks', {}, notes, out.code === 0)
}
