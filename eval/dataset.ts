/** Real per-request token counts from the Azure LLM inference trace 2023 (ContextTokens, GeneratedTokens). */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export interface TokenSample {
  name: string
  input: Int32Array
  output: Int32Array
  meanInput: number
  meanOutput: number
}

// the data sets ship beside the repository (../shared/datasets); BURNWATCH_DATASET_DIR overrides
const DIR = process.env.BURNWATCH_DATASET_DIR ?? fileURLToPath(new URL('../../shared/datasets/azure-llm-inference-2023', import.meta.url))

export function loadTokens(kind: 'code' | 'conv'): TokenSample {
  const text = readFileSync(`${DIR}/AzureLLMInferenceTrace_${kind}.csv`, 'utf8')
  const lines = text.split('\n')
  const input: number[] = []
  const output: number[] = []
  for (let i = 1; i < lines.length; i++) {
    const parts = (lines[i] ?? '').split(',')
    if (parts.length < 3) continue
    input.push(Number(parts[1]))
    output.push(Number(parts[2]))
  }
  const mean = (a: number[]): number => a.reduce((s, x) => s + x, 0) / a.length
  return { name: kind, input: Int32Array.from(input), output: Int32Array.from(output), meanInput: mean(input), meanOutput: mean(output) }
}
