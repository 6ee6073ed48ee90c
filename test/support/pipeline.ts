/** Test wiring: a config with unique topic names on the real broker, and polling helpers. */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { createServer } from 'node:net'
import { PassThrough } from 'node:stream'
import { main } from '../../services/cli/main.ts'
import { loadConfig, type AppConfig } from '../../shared/config.ts'
import { createLogger, type Logger } from '../../shared/logger.ts'

export function uniquePrefix(): string {
  return `t${randomBytes(4).toString('hex')}.`
}

export function testConfig(brokers: string[] | null, env: Record<string, string> = {}): AppConfig {
  return loadConfig({ ...(brokers ? { KAFKA_BROKERS: brokers.join(',') } : {}), KAFKA_TOPIC_PREFIX: uniquePrefix(), LOG_LEVEL: 'warn', ...env })
}

export function testLogger(): Logger {
  return createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'warn' })
}

export async function waitFor<T>(what: string, fn: () => Promise<T | null | undefined | false> | T | null | undefined | false, timeoutMs = 60_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await fn()
      if (v) return v
    } catch (err) {
      last = err
    }
    await sleep(everyMs)
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`)
}

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

/** Runs the `burnwatch` CLI in-process with the given environment; returns its exit code and output. */
export async function runCli(argv: string[], env: Record<string, string>): Promise<{ code: number; text: string }> {
  const out = new PassThrough()
  let text = ''
  out.on('data', (d: Buffer) => (text += d.toString()))
  const code = await main(argv, { out, err: out, env })
  return { code, text }
}
