/**
 * One error hierarchy, as kafkajs has: errors carry context and say whether a retry can help.
 * Decide by type or `code`, never by matching message text.
 */
export class BurnwatchError extends Error {
  readonly code: string
  readonly retriable: boolean
  constructor(message: string, opts: { code: string; retriable?: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause })
    this.name = new.target.name
    this.code = opts.code
    this.retriable = opts.retriable ?? false
  }
}

/** The user's configuration is wrong: lists every problem at once, never retriable. */
export class ConfigError extends BurnwatchError {
  readonly problems: string[]
  constructor(problems: string[]) {
    super(`Invalid Burnwatch configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { code: 'CONFIG_INVALID' })
    this.problems = problems
  }
}

/** Input from outside (an event, a request) is invalid. Never retriable: fix the input. */
export class ValidationError extends BurnwatchError {
  constructor(message: string) {
    super(message, { code: 'INVALID_INPUT' })
  }
}

/** A dependency (Kafka, ClickHouse, Slack) failed; `retriable` says whether trying again can help. */
export class DependencyError extends BurnwatchError {
  readonly dependency: 'kafka' | 'clickhouse' | 'slack'
  constructor(dependency: 'kafka' | 'clickhouse' | 'slack', message: string, opts: { code: string; retriable: boolean; cause?: unknown }) {
    super(message, opts)
    this.dependency = dependency
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}
