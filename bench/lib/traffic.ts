/**
 * Bench traffic: many series of realistic usage events whose per-request token counts are drawn
 * from the Azure LLM inference trace 2023 (Patel et al., "Splitwise", ISCA 2024; CC-BY-4.0,
 * https://github.com/Azure/AzurePublicDataset). The full trace is read from
 * /work/shared/datasets/azure-llm-inference-2023 (or BENCH_TRACE_DIR) when present, otherwise the
 * committed sample fixtures/azure-llm-trace-sample.csv.
 */
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { loadTracePairs, type SeriesSpec, type TokenPair } from '../../services/demo/traffic.ts'

export const TRACE_CREDIT = 'Token counts: Azure LLM inference trace 2023 (Patel et al., Splitwise, ISCA 2024), CC-BY-4.0'

const DEFAULT_TRACE_DIR = '/work/shared/datasets/azure-llm-inference-2023'

export function loadTrace(): { pairs: TokenPair[]; source: string } {
  const dir = process.env.BENCH_TRACE_DIR ?? DEFAULT_TRACE_DIR
  if (existsSync(dir)) {
    const files = readdirSync(dir).filter((f) => f.endsWith('.csv')).sort()
    const pairs = files.flatMap((f) => loadTracePairs(join(dir, f)))
    if (pairs.length) return { pairs, source: `${dir} (${files.join(', ')}; ${pairs.length} requests)` }
  }
  const pairs = loadTracePairs()
  return { pairs, source: `fixtures/azure-llm-trace-sample.csv (${pairs.length} requests)` }
}

/** Models the bundled price catalog knows, so events are priced as in production. */
const MODELS = ['gpt-4o-mini', 'gpt-4o', 'claude-3-5-haiku', 'claude-3-5-sonnet', 'gpt-4.1-mini']

/**
 * `count` series over teams × endpoints × models; about a third read part of their prompt from
 * the provider cache. Rates vary per series (a few per minute to a few dozen).
 */
export function benchSeries(count: number, meanPerMinute: number): SeriesSpec[] {
  const out: SeriesSpec[] = []
  const teams = Math.max(1, Math.round(Math.sqrt(count / 5)))
  for (let i = 0; i < count; i++) {
    const team = `team-${String(i % teams).padStart(3, '0')}`
    const model = MODELS[Math.floor(i / teams) % MODELS.length]!
    const endpoint = `POST /v1/${['chat', 'summarize', 'rerank', 'extract', 'classify', 'embed-rewrite'][i % 6]}/${Math.floor(i / (teams * MODELS.length))}`
    // spread rates over 0.25x..1.75x the mean, deterministically
    const perMinute = meanPerMinute * (0.25 + 1.5 * (((i * 2654435761) >>> 0) / 4294967296))
    out.push({ team, endpoint, model, service: `${team}-svc`, perMinute, ...(i % 3 === 0 ? { cacheShare: 0.3 + (i % 5) / 10 } : {}) })
  }
  return out
}
