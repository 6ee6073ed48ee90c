/**
 * The event bus port. Kafka (kafkajs) in the distributed mode, an in-process bus with the same
 * semantics in the embedded mode: topics with partitions chosen by key, consumer groups with
 * committed offsets, per-partition batches delivered in order.
 *
 * Delivery contract: a batch handler that resolves has its batch's offsets committed after it
 * returns (write, then commit). A handler that throws with an error a retry can help gets the
 * same batch again (at least once) after a jittered backoff; the stage runner
 * (shared/stage/runner.ts) keeps every other error from reaching the bus. Handlers that need
 * exactly-once make their writes idempotent.
 */
export interface OutgoingMessage {
  key: string | null
  value: string
  headers?: Record<string, string>
}

export interface BusMessage {
  topic: string
  partition: number
  /** Kafka offset as a decimal string */
  offset: string
  key: string | null
  value: string
  /** read only: records without headers share one frozen empty object */
  headers: Readonly<Record<string, string>>
  /** broker or producer timestamp, ms since epoch */
  timestamp: number
}

export interface BusBatch {
  topic: string
  partition: number
  messages: BusMessage[]
  /** high watermark of the partition minus the last offset of this batch, when known */
  lag: number | null
}

export interface BusProducer {
  /** Resolves once the bus acknowledged every message (acks=all on Kafka). */
  send(topic: string, messages: OutgoingMessage[]): Promise<void>
  stop(): Promise<void>
}

export interface ConsumerOptions {
  groupId: string
  topics: string[]
  /** where a group without committed offsets starts; default earliest */
  fromBeginning?: boolean
  /** largest batch handed to the handler at once */
  maxBatchMessages?: number
}

export type BatchHandler = (batch: BusBatch, ctx: { heartbeat(): Promise<void>; isRunning(): boolean }) => Promise<void>

export interface BusConsumer {
  /** Starts consuming; resolves when the consumer joined its group. */
  start(handler: BatchHandler): Promise<void>
  /** Stops after the batch in flight finished (and was committed). Idempotent. */
  stop(): Promise<void>
  /** Called when this consumer is assigned partitions (also on rebalance). */
  onAssign(listener: (assigned: { topic: string; partitions: number[] }[]) => void): void
  /** Called when the consumer crashes (`crashed`, then `restarting`) and when it runs again (`running`). */
  onStatus?(listener: (s: ConsumerStatus) => void): void
}

export interface ConsumerStatus {
  state: 'running' | 'crashed' | 'restarting'
  detail: string
}

export interface Bus {
  readonly kind: 'kafka' | 'in-process'
  ensureTopics(topics: { topic: string; partitions?: number }[]): Promise<void>
  producer(): Promise<BusProducer>
  consumer(opts: ConsumerOptions): BusConsumer
  /** Number of partitions of a topic (0 when it does not exist). */
  partitions(topic: string): Promise<number>
  /** Committed offsets and end offsets of a group, for lag. */
  lag(groupId: string, topic: string): Promise<number>
  stop(): Promise<void>
}
