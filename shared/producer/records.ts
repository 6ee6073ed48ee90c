/** Validated events and markers as bus records, and sending them in broker-sized chunks. */
import type { DeploymentMarker, UsageEvent } from '../../schemas/index.ts'
import type { BusProducer, OutgoingMessage } from '../bus/port.ts'
import { seriesKey } from './series-key.ts'

export function usageEventRecords(events: readonly UsageEvent[]): OutgoingMessage[] {
  return events.map((e) => ({ key: seriesKey(e), value: JSON.stringify(e) }))
}

export function deploymentRecords(markers: readonly DeploymentMarker[]): OutgoingMessage[] {
  return markers.map((m) => ({ key: m.team, value: JSON.stringify(m) }))
}

/**
 * Kafka refuses a record batch above the broker's `message.max.bytes` (1 MiB by default), so a
 * large request goes out as several sends of at most this many value bytes.
 */
export const MAX_SEND_BYTES = 256 * 1024

export function chunkRecords(messages: readonly OutgoingMessage[], maxBytes = MAX_SEND_BYTES): OutgoingMessage[][] {
  const chunks: OutgoingMessage[][] = []
  let current: OutgoingMessage[] = []
  let size = 0
  for (const m of messages) {
    const bytes = Buffer.byteLength(m.value) + (m.key ? Buffer.byteLength(m.key) : 0) + 64
    if (current.length && size + bytes > maxBytes) {
      chunks.push(current)
      current = []
      size = 0
    }
    current.push(m)
    size += bytes
  }
  if (current.length) chunks.push(current)
  return chunks
}

/**
 * Resolves once the bus acknowledged every record (acks=all on Kafka). A rejection means some
 * records may have been written and some not: the caller reports failure for the whole batch and
 * the client resends all of it; `event_id` makes the resend safe downstream.
 */
export async function sendAll(producer: BusProducer, topic: string, messages: readonly OutgoingMessage[]): Promise<void> {
  for (const chunk of chunkRecords(messages)) await producer.send(topic, chunk)
}
