/**
 * Each bench part runs in its own Node process (a fresh heap, its own chDB data dir: chDB allows
 * one per process). A part prints progress lines and, last, `RESULT <json>`; the parent relays the
 * progress and parses the result.
 */
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'

const RESULT = 'RESULT '

export function progress(part: string, msg: string): void {
  process.stdout.write(`  [${part}] ${msg}\n`)
}

/**
 * 20000 → "20,000" without ICU: the first toLocaleString of a process maps ICU's number data,
 * about 7 MB of RSS (measured: node's r--p pages +4.8 MB, r-xp +1 MB, malloc +1.4 MB), which a
 * progress line between two memory measures would charge to whatever was measured.
 */
export function count(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',')
}

export function report(result: unknown): void {
  process.stdout.write(RESULT + JSON.stringify(result) + '\n')
}

export interface ChildRun<T> {
  result: T
  seconds: number
}

/** Runs `node [nodeArgs] script` and resolves with its RESULT; rejects on a non-zero exit or no result. */
export async function runPart<T>(script: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<ChildRun<T>> {
  const t0 = performance.now()
  const child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', ...nodeArgs, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let result: T | undefined
  const lines = createInterface({ input: child.stdout })
  lines.on('line', (line) => {
    if (line.startsWith(RESULT)) result = JSON.parse(line.slice(RESULT.length)) as T
    else process.stdout.write(line + '\n')
  })
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject)
    child.once('close', (c) => resolve(c))
  })
  if (code !== 0) throw new Error(`${script} exited with ${code}`)
  if (result === undefined) throw new Error(`${script} printed no result`)
  return { result, seconds: (performance.now() - t0) / 1000 }
}
