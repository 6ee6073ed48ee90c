/**
 * One root pino logger per process, a child per component, errors under `err`.
 * Secrets are redacted by path, and any configured secret value is scrubbed from messages
 * (a token that leaks into an error text from a library never reaches the log).
 */
import { pino, type Logger, type DestinationStream } from 'pino'

export type { Logger }

export const REDACT_PATHS = [
  'password',
  'token',
  'authorization',
  'headers.authorization',
  'req.headers.authorization',
  '*.password',
  '*.token',
  '*.authorization',
  'config.slack.botToken',
  'config.clickhouse.password',
  'config.ingestKeys[*].key',
]

/** Secret values taken from the environment, to scrub wherever they would appear. */
export function secretValues(env: NodeJS.ProcessEnv, extraNames: string[] = []): string[] {
  const names = ['SLACK_BOT_TOKEN', 'CLICKHOUSE_PASSWORD', 'KAFKA_SASL_PASSWORD', ...extraNames]
  return names.map((n) => env[n]).filter((v): v is string => typeof v === 'string' && v.length >= 4)
}

export function scrub(text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) out = out.split(s).join('[REDACTED]')
  return out
}

export function createLogger(opts: { level?: string; secrets?: readonly string[]; destination?: DestinationStream; name?: string } = {}): Logger {
  const secrets = opts.secrets ?? []
  return pino(
    {
      name: opts.name ?? 'burnwatch',
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: secrets.length
        ? {
            streamWrite: (line: string) => scrub(line, secrets),
          }
        : {},
    },
    opts.destination,
  )
}
