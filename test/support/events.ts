/** Fixtures: usage events from a factory (realistic traffic: services/demo/traffic.ts). */
import type { UsageEvent } from '../../schemas/usage-event.ts'

export function makeEvent(i: number, overrides: Partial<UsageEvent> = {}, base = Date.now() - 10 * 60_000): UsageEvent {
  return {
    event_id: `evt-${i}`,
    timestamp: new Date(base + i * 10).toISOString(),
    team: `team-${i % 3}`,
    endpoint: `POST /v1/e${i % 2}`,
    model: 'gpt-4o-mini',
    input_tokens: 100 + (i % 50),
    output_tokens: 20 + (i % 7),
    cost_usd: Number(((i % 97) / 1e4).toFixed(6)),
    deployment_id: 'd-1',
    ...overrides,
  }
}
