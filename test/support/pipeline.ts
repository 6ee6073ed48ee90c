/** Test wiring: a config with unique topic names on the real broker, and polling helpers. */
import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
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
