/**
 * The Kafka bus adapter on the real broker: overlapping sends on one idempotent producer all
 * land exactly once (kafkajs alone breaks its sequence numbers on overlapping sends), and a send
 * larger than the broker's message limit is split.
 */
import { describe, expect, inject, it } from 'vitest'
import { Kafka, logLevel } from 'kafkajs'
import { createKafkaBus } from '../../shared/bus/kafka.ts'
import { testLogger, uniquePrefix, waitFor } from '../support/pipeline.ts'

describe('Kafka bus adapter', () => {
  it('delivers overlapping and oversized sends on one producer, each message once', async () => {
    const brokers = inject('kafkaBrokers')
    const topic = `${uniquePrefix()}bus`
    const bus = createKafkaBus({ brokers, clientId: 'bus-test', logger: testLogger() })
    await bus.ensureTopics([{ topic, partitions: 3 }])
    const producer = await bus.producer()
    // 40 overlapping sends of 50 messages, plus one send of ~3 MB in 1,500 messages
    const sends = Array.from({ length: 40 }, (_, s) => producer.send(topic, Array.from({ length: 50 }, (_, i) => ({ key: `k${i % 7}`, value: JSON.stringify({ s, i }) }))))
    const big = 'x'.repeat(2000)
    sends.push(producer.send(topic, Array.from({ length: 1500 }, (_, i) => ({ key: `big${i % 3}`, value: JSON.stringify({ s: 'big', i, big }) }))))
    await Promise.all(sends)
    await producer.stop()

    const kafka = new Kafka({ clientId: 'bus-reader', brokers, logLevel: logLevel.NOTHING })
    const c = kafka.consumer({ groupId: `reader-${topic}`, maxWaitTimeInMs: 100 })
    await c.connect()
    await c.subscribe({ topic, fromBeginning: true })
    const seen = new Map<string, number>()
    await c.run({ eachMessage: async ({ message }) => {
      const v = JSON.parse(String(message.value)) as { s: number | string; i: number }
      const k = `${v.s}/${v.i}`
      seen.set(k, (seen.get(k) ?? 0) + 1)
    } })
    await waitFor('3,500 messages', () => seen.size >= 3500, 60_000)
    await c.disconnect()
    await bus.stop()
    expect(seen.size).toBe(3500)
    expect([...seen.values()].every((n) => n === 1)).toBe(true)
  })
})
