/**
 * Producer SDK for Node services: validates usage events exactly as the HTTP ingest API does
 * and sends them straight to Kafka (idempotent producer, acks=all), keyed by series.
 *
 *   const usage = createUsageProducer({ brokers: ['kafka:9092'] })
 *   await usage.send({ event_id, timestamp, team, endpoint, model, input_tokens, output_tokens })
 *   await usage.close()
 */
import { pino } from 'pino'
import type { UsageEvent } from '../../schemas/index.ts'
import { createKafkaBus } from '../bus/kafka.ts'
import type { Bus, BusProducer } from '../bus/port.ts'
import { BurnwatchError, DependencyError, errorMessage } from '../errors.ts'
import type { Logger } from '../logger.ts'
import { topicNames } from '../config.ts'
import { sendAll, usageEventRecords } from './records.ts'
import { withTimeout } from './timeout.ts'
import { EventValidationError, validateUsageEvents } from './validate.ts'

export { seriesKey, parseSeriesKey, type SeriesId } from './series-key.ts'
export { validateUsageEvents, validateBatch, invalidBatchMessage, EventValidationError, MAX_REPORTED_ERRORS, type ItemError, type BatchResult } from './validate.ts'
export { withTimeout } from './timeout.ts'
export { usageEventRecords, deploymentRecords, chunkRecords, sendAll, MAX_SEND_BYTES } from './records.ts'

export interface UsageProducerOptions {
  brokers: string[]
  /** default `burnwatch-producer` */
  clientId?: string
  /** default `usage.events`; the topic must exist */
  topic?: string
  /** reject unknown fields (default true); false drops them */
  strict?: boolean
  /** kafkajs logs go here; default silent */
  logger?: Logger
  /** how long send() waits for Kafka's acknowledgement before throwing; default 30 s */
  sendTimeoutMs?: number
}

export interface UsageProducer {
  /**
   * Validates every event, then sends all of them and resolves once Kafka acknowledged them.
   * Throws EventValidationError (per-item `errors`) before sending anything when one is invalid,
   * and a retriable DependencyError when Kafka did not acknowledge: resend the whole batch.
   */
  send(events: UsageEvent | UsageEvent[]): Promise<void>
  /** Flushes nothing (send already waits for acks) and disconnects. Idempotent. */
  close(): Promise<void>
}

export function createUsageProducer(o: UsageProducerOptions): UsageProducer {
  if (!Array.isArray(o.brokers) || o.brokers.length === 0) {
    throw new BurnwatchError('createUsageProducer: brokers must be a non-empty array of host:port strings', { code: 'INVALID_OPTIONS' })
  }
  const topic = o.topic ?? topicNames().events
  const strict = o.strict ?? true
  const bus: Bus = createKafkaBus({ brokers: o.brokers, clientId: o.clientId ?? 'burnwatch-producer', logger: o.logger ?? pino({ level: 'silent' }) })
  let producer: Promise<BusProducer> | null = null
  let closing: Promise<void> | null = null

  const connected = () => {
    producer ??= bus.producer().catch((err: unknown) => {
      producer = null
      throw err
    })
    return producer
  }

  return {
    async send(events) {
      if (closing) throw new BurnwatchError('the usage producer is closed', { code: 'PRODUCER_CLOSED' })
      const list: unknown[] = Array.isArray(events) ? events : [events]
      const checked = validateUsageEvents(list, { strict })
      if (!checked.ok) throw new EventValidationError(checked)
      if (!checked.items.length) return
      try {
        const records = usageEventRecords(checked.items)
        await withTimeout((async () => sendAll(await connected(), topic, records))(), o.sendTimeoutMs ?? 30_000, `sending to ${topic}`)
      } catch (err) {
        throw new DependencyError('kafka', `Kafka did not acknowledge ${checked.items.length} usage event(s) on ${topic}: ${errorMessage(err)}. Resend the whole batch (event_id makes it safe).`, {
          code: 'KAFKA_SEND_FAILED',
          retriable: true,
          cause: err,
        })
      }
    },
    close() {
      closing ??= bus.stop()
      return closing
    },
  }
}
