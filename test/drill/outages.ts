import type { DrillResult } from './lib.ts'
export async function clickhouseOutage(_b: string[]): Promise<DrillResult> { throw new Error('todo') }
export async function slackOutage(_b: string[]): Promise<DrillResult> { throw new Error('todo') }
