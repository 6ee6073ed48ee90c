/**
 * The Kafka bus adapter on the real broker: overlapping sends on one idempotent producer all
 * land exactly once (kafkajs alone breaks its sequence numbers on overlapping sends), and a send
 * larger than the broker's message limit is split.
 */
import { describe, expect, inject, it } from 'vitest'
import { CompressionTypes, Kafka, logLevel } from 'kafkajs'
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

  it('consumes every codec a producer may use, and restarts a consumer that crashed, saying so until it runs again', async () => {
    const brokers = inject('kafkaBrokers')
    const topic = `${uniquePrefix()}codecs`
    const bus = createKafkaBus({ brokers, clientId: 'codec-test', logger: testLogger() })
    await bus.ensureTopics([{ topic, partitions: 1 }])
    // a plain kafkajs producer with each codec (the bus registered snappy, lz4 and zstd with kafkajs)
    const kafka = new Kafka({ clientId: 'codec-producer', brokers, logLevel: logLevel.NOTHING })
    const p = kafka.producer()
    await p.connect()
    const codecs = [CompressionTypes.None, CompressionTypes.GZIP, CompressionTypes.Snappy, CompressionTypes.LZ4, CompressionTypes.ZSTD]
    for (const [n, compression] of codecs.entries()) await p.send({ topic, compression, messages: Array.from({ length: 20 }, (_, i) => ({ key: null, value: `${n}-${i}-${'x'.repeat(200)}` })) })
    await p.disconnect()
    const statuses: string[] = []
    const got = new Set<string>()
    let crashes = 0
    const c = bus.consumer({ groupId: `g-${topic}`, topics: [topic] })
    c.onStatus?.((st) => statuses.push(st.state))
    await c.start(async (b) => {
      // a programming error in a handler is never retried in place: the consumer crashes and is restarted
      if (crashes++ === 0) throw new TypeError('a bug in the handler')
      for (const m of b.messages) got.add(m.value.slice(0, m.value.indexOf('-', 2)))
    })
    await waitFor('100 records of 5 codecs', () => got.size === 100, 60_000)
    await c.stop()
    await bus.stop()
    expect(statuses.slice(0, 4)).toEqual(['running', 'crashed', 'restarting', 'running'])
  })
})
