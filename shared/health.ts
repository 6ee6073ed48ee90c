/**
 * What `/healthz` and `doctor` say about this process: each long-lived part (a stage's consumer,
 * its batch loop) reports whether it works and, when not, why. One Health per process, found
 * through the process's metrics registry (the object every component already receives), so no
 * extra wiring is needed to reach the HTTP servers.
 */
import type { Registry } from './metrics.ts'

export interface Problem {
  /** the part at fault, e.g. `aggregator consumer` */
  component: string
  /** `crashed`, `restarting`, `stuck` */
  state: string
  detail: string
  since: string
}

export interface Health {
  set(component: string, state: string, detail: string): void
  clear(component: string): void
  problems(): Problem[]
}

export function createHealth(): Health {
  const problems = new Map<string, Problem>()
  return {
    set(component, state, detail) {
      const prev = problems.get(component)
      problems.set(component, { component, state, detail, since: prev && prev.state === state ? prev.since : new Date().toISOString() })
    },
    clear(component) {
      problems.delete(component)
    },
    problems: () => [...problems.values()],
  }
}

const byRegistry = new WeakMap<Registry, Health>()

/** The Health of the process that owns `registry`. */
export function healthOf(registry: Registry): Health {
  let h = byRegistry.get(registry)
  if (!h) byRegistry.set(registry, (h = createHealth()))
  return h
}

/** The `/healthz` answer: 200 when nothing is wrong, 503 with the problems otherwise. */
export function healthAnswer(registry: Registry, stopping = false): { status: number; body: Record<string, unknown> } {
  if (stopping) return { status: 503, body: { status: 'stopping' } }
  const problems = healthOf(registry).problems()
  return problems.length ? { status: 503, body: { status: 'degraded', problems } } : { status: 200, body: { status: 'ok' } }
}
