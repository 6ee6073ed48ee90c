// What a newcomer reads on a first run: the example config explains every key, the curl line
// works with ingest keys, the readable logs carry no terminal escapes.
import { readFileSync } from 'node:fs'
import { Writable } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ConfigFileSchema, parseConfigFile, publicUrlOf } from '../../shared/config.ts'
import { createLogger, stripControlEscapes } from '../../shared/logger.ts'
import { curlFirstEvent, shellQuote } from '../../services/cli/hints.ts'

const EXAMPLE = new URL('../../infra/config/burnwatch.yaml', import.meta.url)

/** Every key name of the config schema, nested ones included. */
function keysOf(schema: unknown, out = new Set<string>()): Set<string> {
  const def = (schema as { _zod?: { def?: Record<string, unknown> } })._zod?.def
  if (!def) return out
  if (def.type === 'object') {
    for (const [k, v] of Object.entries(def.shape as Record<string, unknown>)) {
      out.add(k)
      keysOf(v, out)
    }
  }
  for (const inner of [def.innerType, def.element, def.in]) if (inner) keysOf(inner, out)
  return out
}

describe('the example config', () => {
  it('parses, and has every config key with a comment', () => {
    const text = readFileSync(EXAMPLE, 'utf8')
    expect(() => parseConfigFile(text, 'infra/config/burnwatch.yaml')).not.toThrow()
    const keys = keysOf(ConfigFileSchema)
    expect(keys.size).toBeGreaterThan(25)
    const missing = [...keys].filter((k) => !text.split('\n').some((l) => new RegExp(`^\\s*#?\\s*(- )?${k}:.*#`).test(l)))
    expect(missing).toEqual([])
  })
})

describe('first-run hints', () => {
  const now = new Date('2026-11-22T10:00:00.000Z')
  it('the curl line carries the Authorization header by variable, never the key, and a team the key may write', () => {
    const withKey = curlFirstEvent('http://127.0.0.1:8787', { ingestKeys: [{ key: 'super-secret-key-0123456789', keyEnv: 'ADS_INGEST_KEY', teams: ['ads'] }] }, now)
    expect(withKey).toContain('-H "Authorization: Bearer $ADS_INGEST_KEY"')
    expect(withKey).not.toContain('super-secret')
    expect(withKey).toContain('"team":"ads"')
    const without = curlFirstEvent('http://127.0.0.1:8787', { ingestKeys: [] }, now)
    expect(without).not.toContain('Authorization')
    expect(without).toContain('"team":"search"')
    expect(shellQuote("it's")).toBe(`'it'\\''s'`)
  })

  it('public_url wins; else the UI address; unknown for a random port', () => {
    expect(publicUrlOf('https://bw.example.com/', '127.0.0.1', 8788)).toBe('https://bw.example.com')
    expect(publicUrlOf(undefined, '0.0.0.0', 8788)).toBe('http://127.0.0.1:8788')
    expect(publicUrlOf(undefined, '127.0.0.1', 0)).toBeNull()
  })

  it('readable logs are lines a person reads, without the escape sequences of names from events, secrets scrubbed', () => {
    let out = ''
    const log = createLogger({ format: 'pretty', secrets: ['xoxb-secret-token-1234'], destination: new Writable({ write: (c: Buffer, _e, cb) => ((out += c.toString()), cb()) }) })
    log.child({ component: 'notifier' }).info({ team: 'se\u001b[2Jarch', token: 'xoxb-secret-token-1234' }, 'paged se\u001b]0;pwned\u0007arch in #ai-spend with xoxb-secret-token-1234')
    expect(out).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: paged search in #ai-spend with \[REDACTED\]/)
    expect(out).toContain('component: "notifier"')
    expect(out).not.toContain('\u001b')
    expect(out).not.toContain('xoxb-secret')
    expect(out.trim().startsWith('{')).toBe(false)
  })

  it('readable logs: control escapes of names dropped, the JSON line still valid, an escaped backslash kept', () => {
    const line = JSON.stringify({ msg: 'paged a\u001b[31mred\u001b[0m in #x\u0007', endpoint: 'lit \\u001b text', ok: 'line\nnext' })
    const clean = stripControlEscapes(line)
    const parsed = JSON.parse(clean) as Record<string, string>
    expect(parsed.msg).toBe('paged ared in #x')
    expect(parsed.endpoint).toBe('lit \\u001b text')
    expect(parsed.ok).toBe('line\nnext')
  })
})
