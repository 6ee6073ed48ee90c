/**
 * `GET /metrics` (Prometheus text) and `GET /healthz` for stages without the ingest API
 * (aggregator, detector, notifier as their own processes), on METRICS_PORT when set.
 */
import { createServer, type Server } from 'node:http'
import type { Registry } from './metrics.ts'
import { healthAnswer } from './health.ts'

export async function startMetricsServer(registry: Registry, port: number, host: string): Promise<{ url: string; stop(): Promise<void> }> {
  const server: Server = createServer((req, res) => {
    if (req.method === 'GET' && req.url === '/metrics') {
      registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body))
        .catch(() => res.writeHead(500).end())
    } else if (req.method === 'GET' && req.url === '/healthz') {
      const h = healthAnswer(registry)
      res.writeHead(h.status, { 'content-type': 'application/json' }).end(JSON.stringify(h.body))
    } else res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found","message":"GET /metrics or GET /healthz"}')
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, host, resolve))
  const addr = server.address() as { port: number }
  return {
    url: `http://${host}:${addr.port}`,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
