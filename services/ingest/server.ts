/**
 * The HTTP ingest API (DESIGN.md "HTTP ingest API") on node:http: JSON, NDJSON and OTLP/HTTP
 * JSON in, validated records on the bus out, answered only after the bus acknowledged them.
 *
 * Lifecycle: `start()` listens; `stop()` (idempotent) answers /healthz 503, stops accepting
 * connections, lets in-flight requests finish (up to `shutdownTimeoutMs`, then cuts them), and
 * only then stops its bus producer, so no acknowledged request loses its records.
 *
 * Why node:http and not fastify (issue 12 asked to consider it "if it keeps the ingest rate"):
 * `node bench/ingest-http.ts` runs these handlers behind this server and behind fastify 5.12.8
 * (bench/lib/ingest-fastify.ts) side by side, alternating rounds, same load generator. Four runs
 * on 2 shared cores (medians, events/s): node:http 129,757 vs fastify 111,476 (0.859);
 * 108,690 vs 97,859 (0.900); 93,595 vs 81,096 (0.866; server CPU 8.01 vs 8.22 µs per event,
 * 0.974); 106,510 vs 78,488 (0.737; CPU 8.00 vs 8.55 µs, 0.935). fastify keeps 74–90% of the
 * rate, under the 95% asked, so this server stays; the body limit, media type and UTF-8 checks
 * live in the handlers either way.
 */
import { healthAnswer } from '../../shared/health.ts'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Bus, BusProducer } from '../../shared/bus/port.ts'
import type { AppConfig } from '../../shared/config.ts'
import type { Logger } from '../../shared/logger.ts'
import type { Registry } from '../../shared/metrics.ts'
import { createAuthenticator } from './auth.ts'
import { createHandlers, type Handler, type Reply, type RequestContext } from './handlers.ts'
import { HttpError } from './http-error.ts'
import { ingestMetrics } from './metrics.ts'
import { otlpRouting } from './otlp.ts'
import { encodeOtlpStatus } from './otlp-proto.ts'
import { createPublisher } from './publish.ts'

export interface ExtraRoute {
  method: string
  /** exact path, e.g. `/v1/backtest` */
  path: string
  /** writes the whole response itself */
  handler(req: IncomingMessage, res: ServerResponse): Promise<void> | void
}

export interface IngestServerOptions {
  bus: Bus
  config: Pick<AppConfig, 'http' | 'ingestKeys' | 'file' | 'kafka'>
  logger: Logger
  registry: Registry
  extraRoutes?: ExtraRoute[]
  /** how long stop() lets in-flight requests run before closing their connections; default 10 s */
  shutdownTimeoutMs?: number
  /** how long a request waits for the bus to acknowledge before answering 503; default 30 s */
  sendTimeoutMs?: number
}

export interface IngestServer {
  start(): Promise<{ port: number; url: string }>
  stop(): Promise<void>
}

interface Route {
  method: 'GET' | 'POST'
  path: string
  run: Handler
}

const ROUTE_LIST = 'POST /v1/events, POST /v1/deployments, POST /v1/traces, GET /healthz, GET /metrics'

function hostForUrl(host: string): string {
  if (host === '0.0.0.0' || host === '' || host === '::') return '127.0.0.1'
  return host.includes(':') ? `[${host}]` : host
}

function parseUrl(raw: string | undefined): URL {
  try {
    return new URL(raw ?? '/', 'http://ingest.invalid')
  } catch {
    return new URL('http://ingest.invalid/(unparseable)')
  }
}

export function createIngestServer(o: IngestServerOptions): IngestServer {
  const log = o.logger.child({ component: 'ingest' })
  const metrics = ingestMetrics(o.registry)
  const extraRoutes = o.extraRoutes ?? []
  let stopping: Promise<void> | null = null

  let producerPromise: Promise<BusProducer> | null = null
  const producer = () => {
    producerPromise ??= o.bus.producer().catch((err: unknown) => {
      producerPromise = null
      throw err
    })
    return producerPromise
  }
  /** a producer that cannot send again is stopped; the next request gets a new one */
  const discard = (broken: BusProducer) => {
    const current = producerPromise
    void current?.then((p) => {
      if (p !== broken || producerPromise !== current) return
      producerPromise = null
      p.stop().catch((err: unknown) => log.warn({ err }, 'stopping a broken producer failed'))
    }, () => {})
  }

  const handlers = createHandlers({
    authenticate: createAuthenticator(o.config.ingestKeys),
    publish: createPublisher({ producer, discard, timeoutMs: o.sendTimeoutMs ?? 30_000, logger: log }),
    topics: { events: o.config.kafka.topics.events, deployments: o.config.kafka.topics.deployments },
    strictDefault: o.config.file.defaults.strict_events,
    bodyLimitBytes: o.config.http.bodyLimitBytes,
    metrics,
    otlpRouting: otlpRouting(o.config.file),
  })

  const routes: Route[] = [
    { method: 'POST', path: '/v1/events', run: handlers.events },
    { method: 'POST', path: '/v1/deployments', run: handlers.deployments },
    { method: 'POST', path: '/v1/traces', run: handlers.traces },
    // 503 while stopping, or while a stage of this process is down or stuck (a crashed consumer, a batch failing for a minute)
    { method: 'GET', path: '/healthz', run: async () => healthAnswer(o.registry, stopping !== null) },
    {
      method: 'GET',
      path: '/metrics',
      run: async () => ({ status: 200, body: await o.registry.metrics(), headers: { 'content-type': o.registry.contentType } }),
    },
  ]

  function errorReply(err: unknown, ctx: RequestContext, route: string): Reply {
    if (err instanceof HttpError) {
      const items = err.items ?? ctx.items
      // all-or-nothing: every item of a refused request counts as rejected, not only the invalid ones
      if (err.reason && items) metrics.rejected.inc({ reason: err.reason }, items)
      // One line per rejected request: counts and codes, never bodies or credentials.
      log.warn({ route, status: err.status, error: err.body.error, items, invalid: err.invalid, key: ctx.keyEnv }, 'ingest request rejected')
      if (ctx.otlpProtobuf) return { status: err.status, body: encodeOtlpStatus(err.status, err.body.message), headers: { ...err.headers, 'content-type': 'application/x-protobuf' } }
      return { status: err.status, body: err.body, headers: err.headers }
    }
    log.error({ err, route, key: ctx.keyEnv }, 'ingest request failed')
    return { status: 500, body: { error: 'internal_error', message: 'The ingest API failed to process the request; nothing was accepted. Retry later.' } }
  }

  function write(res: ServerResponse, reply: Reply) {
    if (res.headersSent || res.destroyed) return
    const text = typeof reply.body === 'string' || reply.body instanceof Uint8Array ? reply.body : JSON.stringify(reply.body)
    const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', ...reply.headers }
    if (stopping) headers.connection = 'close'
    res.writeHead(reply.status, headers)
    res.end(text)
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const started = performance.now()
    const ctx: RequestContext = { keyEnv: null, items: null }
    const url = parseUrl(req.url)
    const path = url.pathname
    const extra = extraRoutes.find((r) => r.path === path && r.method === req.method)
    const route = routes.find((r) => r.path === path)
    const label = extra?.path ?? route?.path ?? 'unmatched'
    let status: number
    try {
      if (extra) {
        await extra.handler(req, res)
        status = res.statusCode
      } else {
        let reply: Reply
        try {
          if (!route) throw new HttpError(404, 'not_found', `There is no route ${req.method ?? ''} ${path.slice(0, 200)}. Routes: ${ROUTE_LIST}.`)
          if (req.method !== route.method) throw new HttpError(405, 'method_not_allowed', `${route.path} accepts ${route.method} only.`, { headers: { allow: route.method } })
          reply = await route.run(req, url, ctx)
        } catch (err) {
          reply = req.destroyed && !(err instanceof HttpError) ? { status: 499, body: null } : errorReply(err, ctx, label)
        }
        write(res, reply)
        status = reply.status
      }
    } catch (err) {
      log.error({ err, route: label }, 'ingest route failed')
      write(res, { status: 500, body: { error: 'internal_error', message: 'The request failed; retry later.' } })
      status = 500
    }
    metrics.duration.observe({ route: label, status: String(status) }, (performance.now() - started) / 1000)
  }

  const server = createServer({ keepAliveTimeout: 5000 }, (req, res) => {
    void handle(req, res)
  })
  server.on('clientError', (err, socket) => {
    if (!socket.writable) {
      socket.destroy()
      return
    }
    socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-type: application/json\r\n\r\n{"error":"bad_request","message":"malformed HTTP request"}')
    log.debug({ err }, 'malformed HTTP request')
  })

  return {
    async start() {
      if (stopping) throw new Error('the ingest server was stopped; create a new one')
      if (!server.listening) {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject)
          server.listen(o.config.http.port, o.config.http.host, () => {
            server.off('error', reject)
            resolve()
          })
        })
        // Connect to the bus early; a failure here is logged and retried by the first request.
        producer().catch((err: unknown) => log.warn({ err }, 'the bus producer did not connect yet; requests will answer 503 until it does'))
      }
      const { port } = server.address() as AddressInfo
      const url = `http://${hostForUrl(o.config.http.host)}:${port}`
      log.info({ url }, 'ingest API listening')
      return { port, url }
    },
    stop() {
      stopping ??= (async () => {
        // 1. stop intake: refuse new connections, close idle keep-alive ones, answer the rest with Connection: close
        if (server.listening) {
          const closed = new Promise<void>((resolve) => server.close(() => resolve()))
          server.closeIdleConnections()
          // 2. drain: in-flight requests finish (their records are acknowledged or refused) under a deadline
          const deadline = setTimeout(() => server.closeAllConnections(), o.shutdownTimeoutMs ?? 10_000)
          deadline.unref()
          await closed
          clearTimeout(deadline)
        }
        // 3. close the producer (the bus itself belongs to the caller)
        const p = producerPromise
        producerPromise = null
        if (p) await p.then((pr) => pr.stop()).catch((err: unknown) => log.warn({ err }, 'stopping the bus producer failed'))
        log.info('ingest API stopped')
      })()
      return stopping
    },
  }
}
