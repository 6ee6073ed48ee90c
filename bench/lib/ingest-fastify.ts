/**
 * The ingest API's write routes behind fastify, for bench/ingest-http.ts only: the same handlers
 * (services/ingest/handlers.ts: auth, media type, body limit, parse, validation, publish and wait
 * for acks) and the same replies as services/ingest/server.ts, with fastify's routing and reply
 * in place of node:http's. fastify reads no body: a catch-all content-type parser leaves the
 * stream to the handler, which enforces the limit and the media type as on node:http.
 */
import Fastify from 'fastify'
import type { Bus, BusProducer } from '../../shared/bus/port.ts'
import type { AppConfig } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Registry } from '../../shared/metrics.ts'
import { healthAnswer } from '../../shared/health.ts'
import { createAuthenticator } from '../../services/ingest/auth.ts'
import { createHandlers, type Handler, type Reply, type RequestContext } from '../../services/ingest/handlers.ts'
import { HttpError } from '../../services/ingest/http-error.ts'
import { ingestMetrics } from '../../services/ingest/metrics.ts'
import { otlpRouting } from '../../services/ingest/otlp.ts'
import { createPublisher } from '../../services/ingest/publish.ts'

export function createFastifyIngest(o: { bus: Bus; config: Pick<AppConfig, 'http' | 'ingestKeys' | 'file' | 'kafka'>; logger: Logger; registry: Registry }) {
  const log = o.logger.child({ component: 'ingest' })
  const metrics = ingestMetrics(o.registry)
  let producerPromise: Promise<BusProducer> | null = null
  const producer = () => (producerPromise ??= o.bus.producer())
  const handlers = createHandlers({
    authenticate: createAuthenticator(o.config.ingestKeys),
    publish: createPublisher({ producer, discard: () => {}, timeoutMs: 30_000, logger: log }),
    topics: { events: o.config.kafka.topics.events, deployments: o.config.kafka.topics.deployments },
    strictDefault: o.config.file.defaults.strict_events,
    bodyLimitBytes: o.config.http.bodyLimitBytes,
    metrics,
    otlpRouting: otlpRouting(o.config.file),
  })
  let stopping = false
  // logger off: the node:http server logs only rejected requests too (through `log`, below)
  const app = Fastify({ logger: false, keepAliveTimeout: 5000, bodyLimit: o.config.http.bodyLimitBytes })
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_req, _payload, done) => done(null, undefined))

  const errorReply = (err: unknown, ctx: RequestContext, route: string): Reply => {
    if (err instanceof HttpError) {
      const items = err.items ?? ctx.items
      if (err.reason && items) metrics.rejected.inc({ reason: err.reason }, items)
      log.warn({ route, status: err.status, error: err.body.error, items, invalid: err.invalid, key: ctx.keyEnv }, 'ingest request rejected')
      return { status: err.status, body: err.body, headers: err.headers }
    }
    log.error({ err, route, key: ctx.keyEnv }, 'ingest request failed')
    return { status: 500, body: { error: 'internal_error', message: 'The ingest API failed to process the request; nothing was accepted. Retry later.' } }
  }
  const route = (path: string, run: Handler) =>
    app.post(path, async (request, reply) => {
      const started = performance.now()
      const ctx: RequestContext = { keyEnv: null, items: null }
      const url = new URL(request.url, 'http://ingest.invalid')
      let r: Reply
      try {
        r = await run(request.raw, url, ctx)
      } catch (err) {
        r = errorReply(err, ctx, path)
      }
      metrics.duration.observe({ route: path, status: String(r.status) }, (performance.now() - started) / 1000)
      const text = typeof r.body === 'string' || r.body instanceof Uint8Array ? r.body : JSON.stringify(r.body)
      return reply.code(r.status).headers({ 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...r.headers }).send(text)
    })
  route('/v1/events', handlers.events)
  route('/v1/deployments', handlers.deployments)
  route('/v1/traces', handlers.traces)
  app.get('/healthz', async (_request, reply) => {
    const r = await healthAnswer(o.registry, stopping)
    return reply.code(r.status).send(r.body)
  })

  return {
    async start() {
      await app.listen({ port: o.config.http.port, host: o.config.http.host })
      await producer()
      const address = app.server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      return { port, url: `http://127.0.0.1:${port}` }
    },
    async stop() {
      stopping = true
      await app.close()
      await (await producerPromise)?.stop()
    },
  }
}
