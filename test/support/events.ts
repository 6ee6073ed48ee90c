/** Fixtures: usage events from a factory, token counts drawn from the Azure LLM inference trace 2023 (CC-BY-4.0). */
import { readFileSync } from 'node:fs'
import type { UsageEvent } from '../../schemas/usage-event.ts'

export const DATASET_DIR = new URL('../../../shared/datasets/azure-llm-inference-2023/', import.meta.url)

export interface TokenSample {
  input: number
  output: number
}

/** Context/generated token pairs of the trace (both files), or a small built-in sample if absent. */
export function loadTokenSamples(): TokenSample[] {
  const out: TokenSample[] = []
  for (const f of ['AzureLLMInferenceTrace_conv.csv', 'AzureLLMInferenceTrace_code.csv']) {
    let text: string
    try {
      text = readFileSync(new URL(f, DATASET_DIR), 'utf8')
    } catch {
      continue
    }
    for (const line of text.split('\n').slice(1)) {
      const [, ctx, gen] = line.split(',')
      if (ctx && gen) out.push({ input: Number(ctx), output: Number(gen) })
    }
  }
  if (!out.length) {
    const fixture = readFileSync(new URL('../../fixtures/azure-llm-trace-sample.csv', import.meta.url), 'utf8')
    for (const line of fixture.split('\n').slice(1)) {
      const [, ctx, gen] = line.split(',')
      if (ctx && gen) out.push({ input: Number(ctx), output: Number(gen) })
    }
  }
  return out
}

/** Small deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

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
