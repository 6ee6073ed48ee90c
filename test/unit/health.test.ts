import { describe, expect, it } from 'vitest'
import { createServer } from 'node:net'
import { startMetricsServer } from '../../shared/metrics-server.ts'
import { createRegistry } from '../../shared/metrics.ts'
import { healthOf } from '../../shared/health.ts'
import { loadConfig } from '../../shared/config.ts'
import { checkStages } from '../../services/cli/doctor.ts'

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })

describe('a stuck or crashed stage is visible', () => {
  it('/healthz answers 503 naming the problem, and doctor reports it; both recover with the stage', async () => {
    const registry = createRegistry()
    const port = await freePort()
    const server = await startMetricsServer(registry, port, '127.0.0.1')
    try {
      const config = loadConfig({ METRICS_PORT: String(port), PORT: '0' })
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
      expect(await checkStages(config, 0)).toMatchObject({ ok: true })

      healthOf(registry).set('aggregator usage.events/2', 'stuck', 'the batch of usage.events/2 has failed for 75 s')
      healthOf(registry).set('aggregator consumer', 'crashed', 'consumer of usage.events crashed: KafkaJSNotImplemented')
      const res = await fetch(`${server.url}/healthz`)
      expect(res.status).toBe(503)
      const body = (await res.json()) as { status: string; problems: { component: string; state: string }[] }
      expect(body.status).toBe('degraded')
      expect(body.problems.map((p) => `${p.component} ${p.state}`).sort()).toEqual(['aggregator consumer crashed', 'aggregator usage.events/2 stuck'])
      const check = await checkStages(config, 0)
      expect(check.ok).toBe(false)
      expect(check.detail).toMatch(/aggregator usage\.events\/2 stuck since .*: the batch of usage\.events\/2 has failed for 75 s/)
      expect(check.detail).toMatch(/aggregator consumer crashed/)

      healthOf(registry).clear('aggregator usage.events/2')
      healthOf(registry).clear('aggregator consumer')
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200)
    } finally {
      await server.stop()
    }
  })
})
