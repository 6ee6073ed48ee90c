/**
 * One root pino logger per process, a child per component, errors under `err`.
 * Secrets are redacted by path, and any configured secret value is scrubbed from messages
 * (a token that leaks into an error text from a library never reaches the log).
 *
 * Format: JSON lines for machines, or human-readable lines (pino-pretty, in this process) when
 * stdout is a terminal (`LOG_FORMAT=auto`, the default) or when asked (`LOG_FORMAT=pretty`).
 * A terminal never receives the control characters of names from events: JSON escapes them
 * (`\u001b`), and for the readable form those escapes are dropped before pino-pretty prints.
 */
import { pino, type Logger, type DestinationStream } from 'pino'
import pinoPretty from 'pino-pretty'

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

export type LogFormat = 'auto' | 'json' | 'pretty'

/**
 * Drops the JSON escapes of control characters (`\u001b`, `\u0007`, … but not `\n` or `\t`)
 * and raw C1 controls from a JSON log line, keeping it valid JSON: an escape is matched only
 * where it is not itself an escaped backslash followed by text.
 */
export function stripControlEscapes(line: string): string {
  return line.replace(/(?<!\\)((?:\\\\)*)\\(?:u001b\][^"\\]*(?:\\u0007|\\u001b\\\\)|u001b\[[0-9;?]*[A-Za-z]|u00(?:0[0-8bcef]|1[0-9a-f]|7f)|[bfr])/gi, '$1').replace(/[\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '')
}

/** Human-readable lines (synchronous, so nothing is lost at exit): on stdout in colour, or into `into` without. */
function prettyDestination(into?: DestinationStream): DestinationStream {
  return pinoPretty({ colorize: !into, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', singleLine: false, ...(into ? { destination: into as NodeJS.WritableStream } : {}) })
}

export function createLogger(opts: { level?: string; secrets?: readonly string[]; destination?: DestinationStream; name?: string; format?: LogFormat } = {}): Logger {
  const secrets = opts.secrets ?? []
  const format = opts.format ?? 'auto'
  // an explicit 'pretty' formats into the given destination too; 'auto' only when writing to a terminal
  const pretty = format === 'pretty' || (format === 'auto' && !opts.destination && process.stdout.isTTY === true)
  const clean = pretty ? (line: string) => stripControlEscapes(scrub(line, secrets)) : secrets.length ? (line: string) => scrub(line, secrets) : null
  return pino(
    {
      name: opts.name ?? 'burnwatch',
      level: opts.level ?? process.env.LOG_LEVEL ?? 'info',
      redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
      hooks: clean ? { streamWrite: clean } : {},
    },
    pretty ? prettyDestination(opts.destination) : opts.destination,
  )
}
