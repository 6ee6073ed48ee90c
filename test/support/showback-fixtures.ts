/**
 * Fixture usage for showback, digests and environments: two teams, two environments, several
 * endpoints, models and providers, from mid-October to the end of November 2026, written through
 * the aggregator's real insert path (so the materialized views fill the rollups), with rows on the
 * month boundaries. Costs are exact decimals; the tests compare against ClickHouse's own sums.
 */
import { randomBytes } from 'node:crypto'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { createClickHouseUsageStore, type UsageRow } from '../../services/aggregator/clickhouse-store.ts'

const HOUR = 3_600_000

const SERIES = [
  { team: 'search', environment: 'production', endpoint: 'POST /v1/answer', model: 'gpt-4o-mini', provider: 'openai', micros: 1234 },
  { team: 'search', environment: 'production', endpoint: 'POST /v1/summarize', model: 'bw-model', provider: 'self-hosted', micros: 800 },
  { team: 'search', environment: 'staging', endpoint: 'POST /v1/answer', model: 'gpt-4o-mini', provider: 'openai', micros: 1500 },
  { team: 'billing', environment: 'production', endpoint: "invoice 'explain'", model: 'claude-sonnet-4', provider: 'anthropic', micros: 5321 },
  { team: 'billing', environment: 'dev', endpoint: "invoice 'explain'", model: 'mystery-model', provider: '', micros: 0 },
]

/** One row per series and hour from `from` to `to`; the request count varies by hour so weeks differ. */
export function showbackRows(from = Date.UTC(2026, 9, 15), to = Date.UTC(2026, 10, 29, 12)): UsageRow[] {
  const rows: UsageRow[] = []
  const topic = `fixture-${randomBytes(3).toString('hex')}`
  let offset = 0
  for (let t = from; t < to; t += HOUR) {
    const h = Math.floor((t - from) / HOUR)
    SERIES.forEach((s, k) => {
      const n = 1 + ((h * 7 + k * 3) % 4) + (t >= Date.UTC(2026, 10, 23) && k === 0 ? 3 : 0)
      for (let i = 0; i < n; i++) {
        const input = 500 + ((h + i * 13 + k) % 300)
        rows.push({
          event_id: `${topic}-${offset}`,
          timestamp: t + i * 60_000 + 17,
          team: s.team,
          endpoint: s.endpoint,
          model: s.model,
          provider: s.provider,
          service: 'svc',
          deployment_id: '',
          input_tokens: input,
          output_tokens: 100 + (i % 50),
          cache_read_tokens: k === 0 ? 100 : 0,
          cache_write_tokens: k === 3 ? 50 : 0,
          reasoning_tokens: k === 3 ? 40 : 0,
          environment: s.environment,
          cost_input_usd: 0,
          cost_cache_read_usd: 0,
          cost_cache_write_usd: 0,
          cost_output_usd: 0,
          retry: false,
          batch: false,
          cost_usd: ((s.micros + (i % 5)) / 1e6).toFixed(12),
          cost_source: s.micros ? 'catalog' : 'unpriced',
          unpriced: s.micros === 0,
          gpu_seconds: 0,
          latency_ms: 100,
          status: i === 3 ? 'error' : 'ok',
          attributes: {},
          late: false,
          kafka_topic: topic,
          kafka_partition: 0,
          kafka_offset: offset++,
        })
      }
    })
  }
  // on the month boundaries: the last millisecond of October and the first of November
  const edge = (ts: number, micros: number): UsageRow => ({ ...rows[0]!, event_id: `${topic}-edge-${ts}`, timestamp: ts, cost_usd: (micros / 1e6).toFixed(12), kafka_offset: offset++ })
  rows.push(edge(Date.UTC(2026, 10, 1) - 1, 999_999), edge(Date.UTC(2026, 10, 1), 777_777))
  return rows
}

export async function insertShowback(h: ClickHouseHandle, rows: UsageRow[]): Promise<void> {
  const store = createClickHouseUsageStore(h.client, { stagingDir: h.stagingDir })
  for (let i = 0; i < rows.length; i += 20_000) await store.insertEvents(rows.slice(i, i + 20_000), `fixture:${rows[i]!.kafka_topic}:${i}`)
}
