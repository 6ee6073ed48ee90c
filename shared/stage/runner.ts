/**
 * The one batch loop of every stage (aggregator, detector, notifier), as OpenMeter's sink worker
 * and kafkajs's consumer runner own theirs: the stage's code is a handler that turns a consumed
 * batch into a plan, and the runner alone decides ordering, retries, dead letters and commits.
 *
 * Guarantee, per batch of one partition, in this order:
 *   1. dead letters the handler found (bad input) go to the dead-letter topic, and records it
 *      hands on instead of storing go to theirs (acks=all);
 *   2. store: the plan's rows are written, idempotently (a retried write is dropped as a duplicate);
 *   3. publish: the plan's records are sent (acks=all); consumers downstream deduplicate;
 *   4. apply: the in-memory state changes, only now, so a failure in 1–3 leaves the state as it
 *      was and the retried batch is planned afresh from the same state (same output);
 *   5. flush: what the state change produced (an outbox) is sent, retried on its own;
 *   6. the runner returns and the bus commits the offsets (write, then commit).
 * A crash anywhere before 5 redelivers the batch: at least once, and exactly once where 2 is
 * idempotent. An error that says a retry can help (`retriable`) is retried with jittered, capped
 * backoff until it succeeds or the stage stops (nothing is committed meanwhile), and so is one
 * that does not say (unless `retry.unknownAttempts` bounds it). One that cannot succeed (marked
 * not retriable, or a TypeError) is narrowed by halving the batch to the records at fault; those go to the dead-letter
 * topic with the reason and the rest of the batch, and the partition, move on.
 */
import type { Bus, BusBatch, BusConsumer, BusMessage, BusProducer, OutgoingMessage } from '../bus/port.ts'
import { sendAll } from '../producer/records.ts'
import { errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { counter, gauge, type Registry } from '../metrics.ts'
import { healthOf } from '../health.ts'
import { retrying, type RetryOptions } from '../retry.ts'

/** What a handler makes of a batch; every part is optional. */
export interface StagePlan {
  /** bad input found while planning: each set aside with its reason */
  deadLetters?: { message: BusMessage; reason: string }[]
  /**
   * records handed on instead of stored (e.g. re-keyed onto another partition): sent with the
   * dead letters, before the store, since a stage whose checkpoint is its highest stored offset
   * skips them on redelivery once a later record of the batch is stored
   */
  forward?: { topic: string; messages: OutgoingMessage[] }[]
  /** 2. the durable, idempotent write */
  store?: () => Promise<void>
  /** 3. records to publish after the write */
  publish?: { topic: string; messages: OutgoingMessage[] }[]
  /** 4. the in-memory state change, after the write and the publish */
  apply?: () => void
  /**
   * 5. sends what the state change produced (an outbox: e.g. windows the batch closed), before
   * the commit. Retried on its own (the state is already applied); whatever it could not send
   * stays in the stage's outbox for the next flush.
   */
  flush?: () => Promise<void>
}

export interface StageOptions {
  /** `aggregator`, `detector`, `notifier`: metric label and log component */
  stage: string
  bus: Bus
  groupId: string
  topics: string[]
  deadLetterTopic: string
  fromBeginning?: boolean
  maxBatchMessages?: number
  logger: Logger
  registry: Registry
  /** Plans a batch. Must not change state itself: it may be called again for the same records. */
  plan(batch: BusBatch): Promise<StagePlan>
  retry?: Pick<RetryOptions, 'minTimeout' | 'maxTimeout' | 'unknownAttempts'>
  /** called with the partitions assigned to this stage (also after a rebalance) */
  onAssign?: (assigned: { topic: string; partitions: number[] }[]) => void
  /** a batch failing for longer than this makes /healthz and doctor report the stage stuck (default 60 s) */
  stuckAfterMs?: number
}

export interface StageRunner {
  start(): Promise<void>
  /** Stops intake; a batch still retrying is abandoned uncommitted. Idempotent. */
  stop(): Promise<void>
  /** Whether a batch of `topic/partition` is between its fetch and its commit. */
  inFlight(partitionKey: string): boolean
  stats(): { batches: number; deadLettered: number; retries: number }
}

/** A dead letter's value is cut to this many bytes so that, with its headers, it always fits a Kafka request. */
export const MAX_DEAD_LETTER_VALUE_BYTES = 512 * 1024

/** The dead-letter record of an input record: its value (cut when huge), why it was set aside and where it came from. */
export function deadLetter(msg: BusMessage, reason: string, stage?: string): OutgoingMessage {
  const headers: Record<string, string> = { reason: reason.slice(0, 2000), source_topic: msg.topic, source_partition: String(msg.partition), source_offset: msg.offset }
  if (stage) headers.stage = stage
  const bytes = Buffer.byteLength(msg.value)
  if (bytes <= MAX_DEAD_LETTER_VALUE_BYTES) return { key: msg.key, value: msg.value, headers }
  headers.value_truncated_from_bytes = String(bytes)
  return { key: msg.key, value: Buffer.from(msg.value).subarray(0, MAX_DEAD_LETTER_VALUE_BYTES).toString(), headers }
}

export function createStageRunner(o: StageOptions): StageRunner {
  const log = o.logger.child({ component: `${o.stage}-runner` })
  // an error that does not say whether a retry can help (a ClickHouse server error the store did not
  // classify, a library's own) is retried like a retriable one: a stage that waits is visible (stuck
  // in /healthz, doctor, burnwatch_stage_stuck_seconds), records set aside for a passing hiccup are not
  const retry = { unknownAttempts: Infinity, ...o.retry }
  const health = healthOf(o.registry)
  const stuckAfter = o.stuckAfterMs ?? 60_000
  const abort = new AbortController()
  const busy = new Set<string>()
  /** partition → when its current batch first failed */
  const failingSince = new Map<string, number>()
  const stats = { batches: 0, deadLettered: 0, retries: 0 }
  const m = {
    lag: gauge(o.registry, 'burnwatch_consumer_lag', 'records behind the end of the partition', ['group', 'topic', 'partition']),
    stuck: gauge(o.registry, 'burnwatch_stage_stuck_seconds', 'how long the batch in flight of a partition has been failing (0 when it is not)', ['stage', 'topic', 'partition']),
    failures: counter(o.registry, 'burnwatch_stage_failures_total', 'failed attempts of a batch step, by whether a retry could help', ['stage', 'step', 'retriable']),
    deadLetters: counter(o.registry, 'burnwatch_stage_dead_letters_total', 'records set aside on the dead-letter topic', ['stage', 'why']),
  }
  const componentOf = (key: string) => `${o.stage} ${key}`
  const stuckTimer = setInterval(() => {
    const now = Date.now()
    for (const [key, since] of failingSince) {
      const [topic, partition] = splitKey(key)
      m.stuck.set({ stage: o.stage, topic, partition }, (now - since) / 1000)
      if (now - since >= stuckAfter) health.set(componentOf(key), 'stuck', `the batch of ${key} has failed for ${Math.round((now - since) / 1000)} s; it is retried, nothing after it is committed`)
    }
  }, 1000)
  stuckTimer.unref()

  let producer: BusProducer | null = null
  let consumer: BusConsumer | null = null
  let stopping: Promise<void> | null = null

  const sendDeadLetters = async (letters: OutgoingMessage[], why: string) => {
    if (!letters.length) return
    await sendAll(producer!, o.deadLetterTopic, letters)
    stats.deadLettered += letters.length
    m.deadLetters.inc({ stage: o.stage, why }, letters.length)
  }

  /** One attempt at steps 1–4 for `messages` (a batch or a part of it). */
  const attempt = async (batch: BusBatch, messages: BusMessage[]): Promise<StagePlan['flush']> => {
    let step = 'plan'
    try {
      const plan = await o.plan(messages === batch.messages ? batch : { ...batch, messages })
      step = 'dead_letter'
      await sendDeadLetters((plan.deadLetters ?? []).map((d) => deadLetter(d.message, d.reason, o.stage)), 'invalid')
      step = 'forward'
      for (const f of plan.forward ?? []) if (f.messages.length) await sendAll(producer!, f.topic, f.messages)
      step = 'store'
      await plan.store?.()
      step = 'publish'
      for (const p of plan.publish ?? []) if (p.messages.length) await producer!.send(p.topic, p.messages)
      step = 'apply'
      plan.apply?.()
      return plan.flush
    } catch (err) {
      ;(err as { step?: string }).step ??= step
      throw err
    }
  }

  /** Steps 1–4 with retries; a batch that cannot succeed is halved until the records at fault are found and set aside. */
  const settle = async (batch: BusBatch, messages: BusMessage[], key: string): Promise<void> => {
    let flush: StagePlan['flush']
    try {
      flush = await retrying(() => attempt(batch, messages), {
        ...retry,
        signal: abort.signal,
        onFailedAttempt: (err, n, willRetry) => {
          const step = (err as { step?: string }).step ?? 'plan'
          m.failures.inc({ stage: o.stage, step, retriable: String(willRetry) })
          if (!failingSince.has(key)) failingSince.set(key, Date.now())
          if (willRetry) stats.retries++
          const level = n === 1 || n % 10 === 0 ? 'warn' : 'debug'
          log[level]({ err, topic: batch.topic, partition: batch.partition, offset: messages[0]!.offset, records: messages.length, step, attempt: n }, willRetry ? `${step} failed; retrying the batch` : `${step} failed and a retry cannot help; narrowing the batch to the records at fault`)
        },
      })
    } catch (err) {
      if (abort.signal.aborted) throw err
      if (messages.length > 1) {
        const half = Math.ceil(messages.length / 2)
        await settle(batch, messages.slice(0, half), key)
        await settle(batch, messages.slice(half), key)
        return
      }
      const msg = messages[0]!
      const reason = `${(err as { step?: string }).step ?? 'plan'} failed: ${errorMessage(err)}`
      log.error({ err, topic: msg.topic, partition: msg.partition, offset: msg.offset, reason }, 'a record cannot be processed; set aside on the dead-letter topic, the partition moves on')
      await retrying(() => sendDeadLetters([deadLetter(msg, reason, o.stage)], 'failed'), { ...retry, signal: abort.signal })
      return
    }
    // 5. the state is applied: only the flush is retried (a permanent failure leaves it in the outbox)
    if (flush) {
      await retrying(flush, {
        ...retry,
        signal: abort.signal,
        onFailedAttempt: (err, n, willRetry) => {
          m.failures.inc({ stage: o.stage, step: 'flush', retriable: String(willRetry) })
          if (n === 1 || n % 10 === 0) log.warn({ err, topic: batch.topic, partition: batch.partition, attempt: n }, 'flush failed; retrying')
        },
      }).catch((err: unknown) => {
        if (abort.signal.aborted) throw err
        log.error({ err, topic: batch.topic, partition: batch.partition }, 'flush failed and a retry cannot help; what it held stays in the outbox')
      })
    }
  }

  const onBatch = async (batch: BusBatch, ctx: { heartbeat(): Promise<void> }) => {
    const key = `${batch.topic}/${batch.partition}`
    busy.add(key)
    // retries (a ClickHouse outage, Slack's Retry-After) can outlast the session timeout: keep the membership
    const beat = setInterval(() => void ctx.heartbeat().catch(() => {}), 3000)
    try {
      await settle(batch, batch.messages, key)
      stats.batches++
      if (batch.lag !== null) m.lag.set({ group: o.groupId, topic: batch.topic, partition: String(batch.partition) }, batch.lag)
    } finally {
      clearInterval(beat)
      busy.delete(key)
      if (failingSince.delete(key)) {
        const [topic, partition] = splitKey(key)
        m.stuck.set({ stage: o.stage, topic, partition }, 0)
        health.clear(componentOf(key))
      }
    }
    // 6. return: the bus commits the offsets
  }

  return {
    async start() {
      await o.bus.ensureTopics([...o.topics.map((topic) => ({ topic })), { topic: o.deadLetterTopic }])
      producer = await o.bus.producer()
      consumer = o.bus.consumer({ groupId: o.groupId, topics: o.topics, fromBeginning: o.fromBeginning ?? true, ...(o.maxBatchMessages ? { maxBatchMessages: o.maxBatchMessages } : {}) })
      if (o.onAssign) consumer.onAssign(o.onAssign)
      consumer.onStatus?.((s) => {
        if (s.state === 'running') health.clear(`${o.stage} consumer`)
        else health.set(`${o.stage} consumer`, s.state, s.detail)
      })
      await consumer.start(onBatch)
    },
    stop() {
      stopping ??= (async () => {
        abort.abort(new Error(`${o.stage} stopping`))
        clearInterval(stuckTimer)
        await consumer?.stop()
        await producer?.stop()
      })()
      return stopping
    },
    inFlight: (key) => busy.has(key),
    stats: () => ({ ...stats }),
  }
}

function splitKey(key: string): [string, string] {
  const i = key.lastIndexOf('/')
  return [key.slice(0, i), key.slice(i + 1)]
}
