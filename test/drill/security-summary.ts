import type { DrillResult } from './lib.ts'
export async function securitySummary(): Promise<DrillResult> { throw new Error('todo') }
