/** What `burnwatch start` prints for a first step: a curl line that sends one event, ready to paste. */
import type { AppConfig } from '../../shared/config.ts'
import { printable } from '../../shared/text.ts'

/** A single-quoted shell word. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`
}

/**
 * `curl …` that sends one valid event to the ingest API. With ingest keys configured it carries
 * the `Authorization` header with the key's environment variable (never the key itself), and the
 * event's team is one the key may write for.
 */
export function curlFirstEvent(url: string, config: Pick<AppConfig, 'ingestKeys'>, now = new Date()): string {
  const key = config.ingestKeys[0]
  const team = printable(key?.teams[0] ?? 'search')
  const event = { event_id: 'e1', timestamp: now.toISOString(), team, endpoint: 'POST /v1/summarize', model: 'gpt-4o-mini', input_tokens: 1200, output_tokens: 300, deployment_id: 'api-2026.11.22' }
  const lines = [`curl -X POST ${url}/v1/events -H 'content-type: application/json'`]
  if (key) lines.push(`-H "Authorization: Bearer $${key.keyEnv}"`)
  lines.push(`-d ${shellQuote(JSON.stringify(event))}`)
  return lines.join(' \\\n    ')
}
