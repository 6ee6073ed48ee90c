/**
 * Kafka adapter of the bus port (kafkajs 2.2.4).
 *
 * Producer: idempotent, acks=all, so `send` resolving means every in-sync replica has the
 * records and a retried send does not duplicate them.
 * Consumer: eachBatch with auto-commit off. Guarantee, in order:
 *   1. the handler writes the batch wherever it goes (and makes that write durable);
 *   2. only then are the batch's offsets resolved and committed to the group;
 *   a crash between 1 and 2 redelivers the batch (at least once); handlers dedupe.
 * A handler error never skips records: an error a retry can help with is retried with jittered,
 * capped backoff, heartbeating, until it succeeds or the consumer stops; any other error stops the
 * kafkajs consumer, which is then restarted (the stage runner keeps such errors from reaching here).
 * A consumer that crashes (kafkajs gives up on it) is restarted with a jittered backoff, and
 * `onStatus` says so meanwhile (for /healthz). Every Kafka codec is consumed (./codecs.ts).
 */
import { Kafka, logLevel, type Consumer, type Producer, type Admin, type LogEntry, type EachBatchPayload } from 'kafkajs'
import type { Logger } from '../logger.ts'
import { errorMessage } from '../errors.ts'
import { retrying } from '../retry.ts'
import { registerKafkaCodecs } from './codecs.ts'
import { createFastPartitioner } from './partitioner.ts'
import type { Bus, BusBatch, BusConsumer, BusProducer, ConsumerOptions, ConsumerStatus, BatchHandler, OutgoingMessage } from './port.ts'

export interface KafkaBusOptions {
  brokers: string[]
  clientId: string
  logger: Logger
  /** partitions of topics this bus creates */
  partitions?: number
}

function kafkaLogCreator(logger: Logger) {
  const log = logger.child({ component: 'kafkajs' })
  return () =>
    ({ level, log: entry }: LogEntry) => {
      const { message, ...rest } = entry
      if (level === logLevel.ERROR) log.error(rest, message)
      else if (level === logLevel.WARN) log.warn(rest, message)
      else if (level === logLevel.INFO) log.debug(rest, message)
    }
}

export function createKafkaBus(o: KafkaBusOptions): Bus {
  registerKafkaCodecs()
  const kafka = new Kafka({
    clientId: o.clientId,
    brokers: o.brokers,
    logLevel: logLevel.WARN,
    logCreator: kafkaLogCreator(o.logger),
    retry: { initialRetryTime: 200, retries: 10, maxRetryTime: 5000 },
    connectionTimeout: 5000,
  })
  const log = o.logger.child({ component: 'kafka-bus' })
  let admin: Admin | null = null
  const producers = new Set<Producer>()
  const consumers = new Set<BusConsumer>()

  const getAdmin = async () => {
    if (!admin) {
      admin = kafka.admin()
      await admin.connect()
    }
    return admin
  }

  return {
    kind: 'kafka',
    async ensureTopics(list) {
      const a = await getAdmin()
      const existing = new Set(await a.listTopics())
      const missing = list.filter((t) => !existing.has(t.topic))
      if (missing.length) {
        // a broker that just created a topic can answer "does not host this topic-partition" for a moment: retriable
        await retrying(
          () =>
            a.createTopics({
              waitForLeaders: true,
              topics: missing.map((t) => ({ topic: t.topic, numPartitions: t.partitions ?? o.partitions ?? 3, replicationFactor: -1 })),
            }),
          { maxTimeout: 2000, signal: AbortSignal.timeout(60_000) },
        )
      }
    },
    async producer(): Promise<BusProducer> {
      // idempotent producers need unbounded retries (kafkajs warns otherwise); callers bound the wait
      const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, createPartitioner: createFastPartitioner(), retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 100, maxRetryTime: 3000 } })
      await p.connect()
      producers.add(p)
      return { send: serializedSends(p), stop: async () => void (producers.delete(p) && (await p.disconnect())) }
    },
    consumer(opts: ConsumerOptions): BusConsumer {
      return kafkaConsumer(kafka, opts, log, consumers)
    },
    async partitions(topic) {
      const md = await (await getAdmin()).fetchTopicMetadata({ topics: [topic] }).catch(() => null)
      return md?.topics[0]?.partitions.length ?? 0
    },
    async lag(groupId, topic) {
      return groupLag(await getAdmin(), groupId, topic)
    },
    async stop() {
      await Promise.all([...consumers].map((c) => c.stop()))
      await Promise.all([...producers].map((p) => p.disconnect()))
      producers.clear()
      if (admin) {
        const a = admin
        admin = null
        await a.disconnect()
      }
    },
  }
}

/**
 * kafkajs's idempotent producer breaks its sequence numbers when sends overlap (the broker then
 * answers OUT_OF_ORDER_SEQUENCE_NUMBER, which is not retriable): overlapping `send` calls, from
 * concurrent HTTP requests or partitions, are queued and go out one request at a time, small
 * sends merged and large ones split so no request passes the broker's 1 MiB message limit.
 * A send resolves when all its messages are acknowledged; if a request fails, every send with
 * messages in it or after it rejects (its caller retries; consumers deduplicate).
 */
const MAX_REQUEST_BYTES = 512 * 1024

function serializedSends(p: Producer): BusProducer['send'] {
  type Pending = { topic: string; messages: OutgoingMessage[]; left: number; resolve(): void; reject(err: unknown): void }
  let queue: Pending[] = []
  let running = false
  const drain = async () => {
    running = true
    while (queue.length) {
      const batch = queue
      queue = []
      // requests of at most MAX_REQUEST_BYTES, each a list of (send, message) pairs
      const requests: { owner: Pending; m: OutgoingMessage }[][] = [[]]
      let size = 0
      for (const q of batch) {
        q.left = q.messages.length
        for (const m of q.messages) {
          const bytes = m.value.length + (m.key?.length ?? 0) + 64
          if (size + bytes > MAX_REQUEST_BYTES && requests[requests.length - 1]!.length) {
            requests.push([])
            size = 0
          }
          requests[requests.length - 1]!.push({ owner: q, m })
          size += bytes
        }
      }
      let failed: unknown = null
      for (const req of requests) {
        if (failed !== null) break
        const byTopic = new Map<string, OutgoingMessage[]>()
        for (const { owner, m } of req) byTopic.set(owner.topic, [...(byTopic.get(owner.topic) ?? []), m])
        try {
          await p.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, ms]) => ({ topic, messages: ms.map((m) => ({ key: m.key, value: m.value, headers: m.headers })) })) })
          for (const { owner } of req) if (--owner.left === 0) owner.resolve()
        } catch (err) {
          failed = err
        }
      }
      if (failed !== null) for (const q of batch) if (q.left > 0) q.reject(failed)
    }
    running = false
  }
  return (topic, messages) => {
    if (!messages.length) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      queue.push({ topic, messages, left: messages.length, resolve, reject })
      if (!running) void drain()
    })
  }
}

/** Records behind the end of the topic for a group (a group that never committed counts everything). */
export async function groupLag(admin: Admin, groupId: string, topic: string): Promise<number> {
  const [committed, ends] = await Promise.all([admin.fetchOffsets({ groupId, topics: [topic] }), admin.fetchTopicOffsets(topic)])
  const c = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]))
  return ends.reduce((sum, e) => {
    const done = c.get(e.partition) ?? -1
    return sum + (done < 0 ? Number(e.high) - Number(e.low) : Number(e.high) - done)
  }, 0)
}

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({})
/** Kafka record headers as strings (most records have none: no allocation for those). */
function headersOf(h: Record<string, Buffer | string | (Buffer | string)[] | undefined> | undefined): Record<string, string> {
  if (!h) return NO_HEADERS
  let out: Record<string, string> | null = null
  for (const k in h) {
    const v = h[k]
    out ??= {}
    const text = v === undefined ? '' : Buffer.isBuffer(v) ? v.toString() : String(v)
    // an own property even for a header named __proto__
    Object.defineProperty(out, k, { value: text, enumerable: true, writable: true, configurable: true })
  }
  return out ?? NO_HEADERS
}

function kafkaConsumer(kafka: Kafka, opts: ConsumerOptions, log: Logger, registry: Set<BusConsumer>): BusConsumer {
  let consumer: Consumer | null = null
  let running = false
  let stopping: Promise<void> | null = null
  let handler: BatchHandler | null = null
  let restartTimer: NodeJS.Timeout | null = null
  let crashes = 0
  const stopSignal = new AbortController()
  const listeners: ((a: { topic: string; partitions: number[] }[]) => void)[] = []
  const statusListeners: ((s: ConsumerStatus) => void)[] = []
  const status = (s: ConsumerStatus) => {
    for (const l of statusListeners) l(s)
  }

  const eachBatch = (c: Consumer) => async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
    if (!batch.messages.length) return
    const max = opts.maxBatchMessages ?? 10_000
    for (let i = 0; i < batch.messages.length; i += max) {
      const slice = batch.messages.slice(i, i + max)
      const busBatch: BusBatch = {
        topic: batch.topic,
        partition: batch.partition,
        lag: Number(batch.highWatermark) - 1 - Number(slice[slice.length - 1]!.offset),
        messages: slice.map((m) => ({
          topic: batch.topic,
          partition: batch.partition,
          offset: m.offset,
          key: m.key ? m.key.toString() : null,
          value: m.value ? m.value.toString() : '',
          headers: headersOf(m.headers),
          timestamp: Number(m.timestamp),
        })),
      }
      if (!isRunning() || isStale()) return
      // 1. the handler writes (durably); only what a retry can help with is retried, jittered and capped
      try {
        await retrying(() => handler!(busBatch, { heartbeat, isRunning: () => isRunning() && !isStale() }), {
          signal: stopSignal.signal,
          unknownAttempts: Infinity,
          onFailedAttempt: async (err, n, willRetry) => {
            if (!isRunning() || isStale()) throw err
            log[n === 1 || n % 10 === 0 ? 'warn' : 'debug']({ err, topic: batch.topic, partition: batch.partition, offset: slice[0]!.offset, attempt: n }, willRetry ? 'batch handler failed; retrying the same batch' : 'batch handler failed with an error no retry can help; the consumer stops (and restarts)')
            await heartbeat().catch(() => {})
          },
        })
      } catch (err) {
        if (!isRunning() || isStale() || stopSignal.signal.aborted) return
        throw err
      }
      // 2. then the offsets are committed (the next offset to read, as Kafka expects)
      const last = slice[slice.length - 1]!.offset
      resolveOffset(last)
      await c.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(last) + 1n).toString() }])
    }
  }

  /** kafkajs gave up on a consumer: a new one, after a jittered, capped backoff. */
  const scheduleRestart = (old: Consumer | null, error: unknown) => {
    const delay = Math.min(30_000, 500 * 2 ** Math.min(crashes, 6)) * (1 + Math.random())
    restartTimer = setTimeout(() => {
      restartTimer = null
      if (!running) return
      status({ state: 'restarting', detail: `restarting the consumer of ${opts.topics.join(',')} after: ${errorMessage(error)}` })
      void (old ? old.disconnect().catch(() => {}) : Promise.resolve())
        .then(() => (running ? launch() : undefined))
        .catch((err: unknown) => {
          crashes++
          log.error({ err }, 'consumer restart failed; trying again')
          status({ state: 'crashed', detail: `consumer of ${opts.topics.join(',')} could not restart: ${errorMessage(err)}` })
          scheduleRestart(consumer, err)
        })
    }, delay)
    restartTimer.unref()
  }

  /** Connects a new kafkajs consumer and runs it; resolves when it joined its group. */
  const launch = async (): Promise<void> => {
    const c = kafka.consumer({
      groupId: opts.groupId,
      // kafkajs waits up to 5 s per fetch by default; a stream processor wants small waits
      maxWaitTimeInMs: 100,
      minBytes: 1,
      // large fetches when behind: fewer, larger batches, so fewer and larger ClickHouse inserts
      maxBytesPerPartition: 16 * 1024 * 1024,
      maxBytes: 64 * 1024 * 1024,
      sessionTimeout: 30_000,
      heartbeatInterval: 3000,
      rebalanceTimeout: 30_000,
      allowAutoTopicCreation: false,
      retry: { initialRetryTime: 200, retries: 10, maxRetryTime: 5000 },
    })
    consumer = c
    c.on(c.events.GROUP_JOIN, (e) => {
      crashes = 0
      status({ state: 'running', detail: 'joined its group' })
      const assignment = e.payload.memberAssignment
      const assigned = Object.entries(assignment).map(([topic, partitions]) => ({ topic, partitions: partitions as number[] }))
      for (const l of listeners) l(assigned)
    })
    c.on(c.events.CRASH, (e) => {
      const { error, restart } = e.payload as unknown as { error: Error; restart: boolean }
      if (!running) return
      crashes++
      log[restart ? 'warn' : 'error']({ err: error, groupId: opts.groupId, restart }, restart ? 'consumer crashed; kafkajs restarts it' : 'consumer crashed; restarting it')
      status({ state: 'crashed', detail: `consumer of ${opts.topics.join(',')} crashed: ${errorMessage(error)}; ${restart ? 'kafkajs restarts it' : 'restarting it'}` })
      if (!restart) scheduleRestart(c, error)
    })
    const joined = new Promise<void>((res) => {
      const off = c.on(c.events.GROUP_JOIN, () => {
        off()
        res()
      })
    })
    await c.connect()
    for (const topic of opts.topics) await c.subscribe({ topic, fromBeginning: opts.fromBeginning ?? true })
    await c.run({ autoCommit: false, eachBatchAutoResolve: false, partitionsConsumedConcurrently: 4, eachBatch: eachBatch(c) })
    await joined
  }

  const self: BusConsumer = {
    onAssign(l) {
      listeners.push(l)
    },
    onStatus(l) {
      statusListeners.push(l)
    },
    async start(h: BatchHandler) {
      if (handler) return
      handler = h
      running = true
      registry.add(self)
      await launch()
    },
    async stop() {
      if (!consumer) return
      if (!stopping) {
        running = false
        stopSignal.abort(new Error('consumer stopping'))
        if (restartTimer) clearTimeout(restartTimer)
        stopping = (async () => {
          const c = consumer!
          await c.stop()
          await c.disconnect()
          registry.delete(self)
        })()
      }
      await stopping
    },
  }
  return self
}
