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

export function createPublisher(o: { producer: () => Promise<BusProducer>; timeoutMs: number; logger: Logger }): Publish {
  return async (topic, records) => {
    try {
      await withTimeout((async () => sendAll(await o.producer(), topic, records))(), o.timeoutMs, `sending ${records.length} records to ${topic}`)
    } catch (err) {
      o.logger.warn({ err, topic, records: records.length }, 'the bus did not acknowledge a batch; answering 503')
      throw new HttpError(503, 'bus_unavailable', `The event bus did not acknowledge the batch, so nothing was accepted. Retry the whole batch in ${RETRY_AFTER_SECONDS} s; resending is safe (event_id deduplicates).`, {
        reason: 'bus_unavailable',
        headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
      })
    }
  }
}
