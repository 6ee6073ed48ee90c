/**
 * bin/burnwatch.js: a process that runs the detector (`start`, `detect`) replaces itself once with
 * glibc's malloc arenas capped (MALLOC_ARENA_MAX=2); other commands, BURNWATCH_V8_FAVOR_MEMORY=0 and
 * a MALLOC_ARENA_MAX of the user's own are left alone. Observed with a preload (NODE_OPTIONS
 * --import) that prints the variable each time a process starts; an invalid setting then stops the
 * command before it opens anything.
 */
import { spawnSync } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'

const dir = mkdtempSync(join(tmpdir(), 'bw-arenas-'))
const preload = join(dir, 'print-arena.mjs')
writeFileSync(preload, "process.stderr.write('arena=' + (process.env.MALLOC_ARENA_MAX || '-') + ' pid=' + process.pid + '\\n')\n")
const glibc = process.platform === 'linux' && !!(process.report.getReport() as { header: { glibcVersionRuntime?: string } }).header.glibcVersionRuntime

function starts(args: string[], env: Record<string, string> = {}): string[] {
  const r = spawnSync(process.execPath, ['bin/burnwatch.js', ...args], {
    env: { ...process.env, MALLOC_ARENA_MAX: '', ...env, NODE_OPTIONS: `--import ${preload}`, BURNWATCH_EMBEDDED_SERVER: 'not-a-setting', BURNWATCH_DATA_DIR: dir },
    encoding: 'utf8',
    timeout: 60_000,
  })
  expect(r.status).not.toBe(0) // the invalid setting stopped it
  expect(r.stderr).toMatch(/BURNWATCH_EMBEDDED_SERVER/)
  return [...r.stderr.matchAll(/arena=(\S+) pid=(\d+)/g)].map((m) => `${m[1]}@${m[2]}`)
}

describe('bin/burnwatch.js caps malloc arenas where the detector runs', () => {
  it.each(['start', 'detect'])('%s: once, in the same process', (cmd) => {
    const seen = starts([cmd])
    if (!glibc) return expect(seen.map((s) => s.split('@')[0])).toEqual(['-'])
    expect(seen.map((s) => s.split('@')[0])).toEqual(['-', '2'])
    expect(new Set(seen.map((s) => s.split('@')[1])).size).toBe(1) // execve: same PID
  })

  it('other commands, BURNWATCH_V8_FAVOR_MEMORY=0 and a value of your own: left alone', () => {
    expect(starts(['aggregate']).map((s) => s.split('@')[0])).toEqual(['-'])
    expect(starts(['start'], { BURNWATCH_V8_FAVOR_MEMORY: '0' }).map((s) => s.split('@')[0])).toEqual(['-'])
    expect(starts(['detect'], { MALLOC_ARENA_MAX: '4' }).map((s) => s.split('@')[0])).toEqual(['4'])
  })
})
