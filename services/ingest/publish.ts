/**
 * Handing validated records to the bus. The answer to the client waits for this:
 *   1. every record is sent, in broker-sized chunks;
 *   2. the bus acknowledges each chunk (acks=all on Kafka);
 *   3. only then does the client get its 2xx.
 * Any failure or timeout → 503 with Retry-After for the whole batch: some records may already be
 * on the topic, and the client's resend of the same batch is deduplicated downstream by event_id.
 */
import type { OutgoingMessage, BusProducer } from '../../shared/bus/port.ts'
import type { Logger } from '../../shared/logger.ts'
import { sendAll } from '../../shared/producer/records.ts'
import { withTimeout } from '../../shared/producer/timeout.ts'
import { HttpError } from './http-error.ts'

export const RETRY_AFTER_SECONDS = 5

export type Publish = (topic: string, records: readonly OutgoingMessage[]) => Promise<void>

/**
 * Broker errors after which an idempotent producer cannot send again: its producer id and sequence
 * numbers no longer match the partition's (seen when a partition leader is killed mid-request on a
 * three-broker cluster: OUT_OF_ORDER_SEQUENCE_NUMBER on every later send). Only a new producer,
 * with a new producer id, gets past them.
 */
const BROKEN_PRODUCER = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH', 'INVALID_PRODUCER_ID_MAPPING'])

export function producerBroken(err: unknown): boolean {
  for (let e = err as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (typeof e.type === 'string' && BROKEN_PRODUCER.has(e.type)) return true
  }
  return false
}

/** `discard` is told about a producer that cannot send again; the next `producer()` must be a new one. */
export function createPublisher(o: { producer: () => Promise<BusProducer>; discard?: (p: BusProducer) => void; timeoutMs: number; logger: Logger }): Publish {
  return async (topic, records) => {
    let used: BusProducer | null = null
    try {
      await withTimeout((async () => sendAll((used = await o.producer()), topic, records))(), o.timeoutMs, `sending ${records.length} records to ${topic}`)
    } catch (err) {
      if (used && producerBroken(err)) {
        o.logger.warn({ err }, 'the producer cannot send again (its sequence numbers no longer match the broker); replacing it')
        o.discard?.(used)
      }
      o.logger.warn({ err, topic, records: records.length }, 'the bus did not acknowledge a batch; answering 503')
      throw new HttpError(503, 'bus_unavailable', `The event bus did not acknowledge the batch, so nothing was accepted. Retry the whole batch in ${RETRY_AFTER_SECONDS} s; resending is safe (event_id deduplicates).`, {
        reason: 'bus_unavailable',
        headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
      })
    }
  }
}
