/** Starts `burnwatch <command>` as a child process, as an operator would, for crash tests. */
import { spawn, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url))

export interface Child {
  proc: ChildProcess
  output(): string
  exited: Promise<number | null>
  kill(signal: NodeJS.Signals): void
}

export function startBurnwatch(args: string[], env: Record<string, string>): Child {
  const proc = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', 'bin/burnwatch.ts', ...args], {
    cwd: REPO_ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_LEVEL: 'info', UI_PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  proc.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  proc.stderr!.on('data', (d: Buffer) => (out += d.toString()))
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)))
  return { proc, output: () => out, exited, kill: (s) => void proc.kill(s) }
}
