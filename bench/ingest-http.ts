/**
 * Ingest HTTP rate: the ingest API on node:http (services/ingest/server.ts, what runs) against the
 * same handlers behind fastify (issue 12, item 10: "consider a well-kept HTTP framework for the
 * ingest API if it keeps the ingest rate"), side by side in one run, with one load generator.
 *
 *   node bench/ingest-http.ts                 rounds alternate node:http, fastify, node:http, ...
 *   BENCH_ROUNDS=3 BENCH_SECONDS=8 BENCH_CONCURRENCY=8 BENCH_BATCH=100 node bench/ingest-http.ts
 *
 * Each server runs in its own child process (`serve <impl>`) on the in-process bus (its producer
 * acknowledges at once: the HTTP stack, parsing and validation are measured, not Kafka), so the
 * load generator (this process: keep-alive connections, pre-serialized JSON batches of realistic
 * events) does not share its event loop. Every request must answer 202; the figures are accepted
 * events per second and the server process's CPU time per event (user + system, /proc: less
 * sensitive than the rate to other work on a shared machine), the median of the rounds of each.
 *
 * The fastify variant parses nothing itself (a catch-all content-type parser leaves the body to the
 * handler, which enforces the limit, the media type and UTF-8 as in node:http), so it keeps every
 * behaviour the ingest tests check and differs only in routing and reply.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { Agent, request } from 'node:http'
import { createInterface } from 'node:readline'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadConfig } from '../shared/config.ts'
import { createLogger } from '../shared/logger.ts'
import { createRegistry } from '../shared/metrics.ts'
import { createInProcessBus } from '../shared/bus/index.ts'
import { createIngestServer } from '../services/ingest/server.ts'
import { createFastifyIngest } from './lib/ingest-fastify.ts'

type Impl = 'node:http' | 'fastify'

async function serve(impl: Impl): Promise<void> {
  const config = loadConfig({ PORT: '0', LOG_LEVEL: 'warn' })
  const logger = createLogger({ level: 'warn' })
  const bus = createInProcessBus({ logger })
  const o = { bus, config, logger, registry: createRegistry() }
  const server = impl === 'fastify' ? createFastifyIngest(o) : createIngestServer(o)
  const { port } = await server.start()
  process.stdout.write(`PORT ${port}\n`)
  process.once('SIGTERM', () => void server.stop().then(() => process.exit(0)))
}

function startServer(impl: Impl): Promise<{ child: ChildProcess; port: number }> {
  const child = spawn(process.execPath, ['--disable-warning=TimeoutNegativeWarning', fileURLToPath(import.meta.url), 'serve', impl], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! })
    lines.on('line', (l) => {
      if (l.startsWith('PORT ')) resolve({ child, port: Number(l.slice(5)) })
    })
    child.once('exit', (code) => reject(new Error(`${impl} server exited (${code})`)))
  })
}

function bodies(batch: number, count: number): Buffer[] {
  const models = ['gpt-4o-mini', 'gpt-4o', 'claude-3-5-sonnet-20241022']
  const now = Date.now()
  return Array.from({ length: count }, (_, b) =>
    Buffer.from(
      JSON.stringify(
        Array.from({ length: batch }, (_, i) => ({
          event_id: `bench-${b}-${i}-${now}`,
          timestamp: new Date(now - 60_000 + i * 10).toISOString(),
          team: `team-${(b + i) % 8}`,
          endpoint: `POST /v1/feature-${i % 12}`,
          model: models[i % models.length],
          input_tokens: 800 + ((i * 37) % 900),
          output_tokens: 120 + ((i * 13) % 400),
          cache_read_tokens: i % 3 === 0 ? 256 : 0,
          cost_usd: Number((0.0004 + (i % 17) * 0.00003).toFixed(6)),
          deployment_id: `api-${b % 3}`,
          environment: 'production',
          attributes: { region: 'eu-west-1', tier: i % 2 ? 'free' : 'pro' },
        })),
      ),
    ),
  )
}

/** user + system CPU seconds of a process so far (/proc/<pid>/stat, clock ticks of 1/100 s) */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(f[11]) + Number(f[12])) / 100
}

async function load(pid: number, port: number, seconds: number, concurrency: number, batch: number): Promise<{ eventsPerSecond: number; cpuUsPerEvent: number; requests: number; non202: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency })
  const payloads = bodies(batch, 64)
  let requests = 0
  let non202 = 0
  let k = 0
  const post = (body: Buffer) =>
    new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, path: '/v1/events', method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
        res.resume()
        res.once('end', () => resolve(res.statusCode ?? 0))
      })
      req.once('error', reject)
      req.end(body)
    })
  // warm-up: JIT, connections
  const warmEnd = performance.now() + 1500
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < warmEnd) await post(payloads[k++ % payloads.length]!)
  }))
  const cpu0 = cpuSeconds(pid)
  const t0 = performance.now()
  const end = t0 + seconds * 1000
  let accepted = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      const status = await post(payloads[k++ % payloads.length]!)
      requests++
      if (status === 202) accepted += batch
      else non202++
    }
  }))
  const elapsed = (performance.now() - t0) / 1000
  const cpu = cpuSeconds(pid) - cpu0
  agent.destroy()
  return { eventsPerSecond: accepted / elapsed, cpuUsPerEvent: (cpu / accepted) * 1e6, requests, non202 }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

async function main(): Promise<void> {
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3)
  const seconds = Number(process.env.BENCH_SECONDS ?? 8)
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 8)
  const batch = Number(process.env.BENCH_BATCH ?? 100)
  const rates: Record<Impl, number[]> = { 'node:http': [], fastify: [] }
  const cpus: Record<Impl, number[]> = { 'node:http': [], fastify: [] }
  for (let r = 0; r < rounds; r++) {
    // alternate the order each round: neither gets the quieter half of a shared machine
    const order: Impl[] = r % 2 === 0 ? ['node:http', 'fastify'] : ['fastify', 'node:http']
    for (const impl of order) {
      const { child, port } = await startServer(impl)
      try {
        const x = await load(child.pid!, port, seconds, concurrency, batch)
        if (x.non202) throw new Error(`${impl}: ${x.non202} of ${x.requests} requests not answered 202`)
        rates[impl].push(x.eventsPerSecond)
        cpus[impl].push(x.cpuUsPerEvent)
        process.stdout.write(`  round ${r + 1} ${impl.padEnd(9)} ${x.eventsPerSecond.toFixed(0)} events/s, server CPU ${x.cpuUsPerEvent.toFixed(2)} µs/event (${x.requests} requests of ${batch} events, ${concurrency} connections, ${seconds} s)\n`)
      } finally {
        child.kill('SIGTERM')
        await new Promise((res) => child.once('exit', res))
      }
    }
  }
  const node = median(rates['node:http'])
  const fast = median(rates.fastify)
  const nodeCpu = median(cpus['node:http'])
  const fastCpu = median(cpus.fastify)
  process.stdout.write(`ingest HTTP, median of ${rounds} rounds: node:http ${node.toFixed(0)} events/s, fastify ${fast.toFixed(0)} events/s, fastify/node:http ${(fast / node).toFixed(3)}; server CPU per event node:http ${nodeCpu.toFixed(2)} µs, fastify ${fastCpu.toFixed(2)} µs (events per CPU-second ratio ${(nodeCpu / fastCpu).toFixed(3)})\n`)
  process.stdout.write(`RESULT ${JSON.stringify({ nodeHttp: node, fastify: fast, ratio: fast / node, cpuUsPerEvent: { nodeHttp: nodeCpu, fastify: fastCpu }, cpuRatio: nodeCpu / fastCpu, rounds, seconds, concurrency, batch, fastifyVersion: (await import('fastify/package.json', { with: { type: 'json' } })).default.version })}\n`)
}

if (process.argv[2] === 'serve') await serve(process.argv[3] as Impl)
else await main()
