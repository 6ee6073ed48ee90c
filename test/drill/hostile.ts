import type { DrillResult } from './lib.ts'
export async function hostileInput(_b: string[]): Promise<DrillResult> { throw new Error('todo') }
