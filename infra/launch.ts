/**
 * What the local dev servers (Kafka broker, Kafka cluster, ClickHouse server) share when run as
 * commands: knowing they were run directly, and a clean stop on Ctrl-C or SIGTERM.
 */
import { realpathSync } from 'node:fs'
import { pathToFileURL } from 'node:url'

/** True when the module at `moduleUrl` is the script node was started with (not imported). */
export function invokedDirectly(moduleUrl: string): boolean {
  const invoked = process.argv[1]
  if (invoked === undefined) return false
  try {
    return moduleUrl === pathToFileURL(realpathSync(invoked)).href
  } catch {
    return false
  }
}

/** Stops the server once on SIGINT or SIGTERM, then exits (1 if the stop failed). */
export function stopOnSignals(stop: () => Promise<void>, what: string): void {
  let stopping = false
  const onSignal = () => {
    if (stopping) return
    stopping = true
    console.error(`stopping ${what}...`)
    stop().then(() => process.exit(0), (e: unknown) => {
      console.error(e)
      process.exit(1)
    })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}

/** Runs a command's main, printing a failure's message (not its stack) and exiting 1. */
export function runMain(main: () => Promise<void>): void {
  main().catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e)
    process.exit(1)
  })
}
