// The producer SDK against the real Kafka broker: valid events land keyed by series; a batch with
// one invalid event throws per-item errors and sends nothing.
import { randomBytes } from 'node:crypto'
import { Kafka, logLevel, type Admin } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { topicNames } from '../../shared/config.ts'
import { DependencyError } from '../../shared/errors.ts'
import { createUsageProducer, EventValidationError, seriesKey } from '../../shared/producer/index.ts'
import type { UsageEvent } from '../../schemas/index.ts'

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[]
  }
}

const brokers = inject('kafkaBrokers')
const kafka = new Kafka({ clientId: 'burnwatch-it-sdk', brokers, logLevel: logLevel.NOTHING })
let admin: Admin
const topic = topicNames(`t${randomBytes(5).toString('hex')}.`).events

beforeAll(async () => {
  admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true })
})
afterAll(async () => {
  await admin.deleteTopics({ topics: [topic] }).catch(() => {})
  await admin.disconnect()
})

const event = (i: number, over: Partial<UsageEvent> = {}): UsageEvent => ({
  event_id: `sdk-${i}-${randomBytes(3).toString('hex')}`,
  timestamp: new Date().toISOString(),
  team: 'search',
  endpoint: `endpoint-${i % 3}`,
  model: 'claude-sonnet-4',
  provider: 'anthropic',
  input_tokens: 1000,
  output_tokens: 100,
  cache_read_tokens: 400,
  ...over,
})

const count = async () => (await admin.fetchTopicOffsets(topic)).reduce((s, p) => s + Number(p.high), 0)

describe('usage producer SDK → Kafka', () => {
  it('validates before sending, sends valid events keyed by series, and closes idempotently', async () => {
    const usage = createUsageProducer({ brokers, topic, clientId: 'burnwatch-it-sdk' })
    const bad = [event(0), { ...event(1), output_tokens: -5 }, event(2)]
    const err = await usage.send(bad).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(EventValidationError)
    expect((err as EventValidationError).errors).toEqual([{ index: 1, path: 'output_tokens', message: expect.stringMatching(/≥ 0/) as unknown }])
    expect((err as EventValidationError).message).toMatch(/^1 of 3 events are invalid; nothing was accepted/)
    expect(await count()).toBe(0)

    const one = event(10)
    const batch = Array.from({ length: 9 }, (_, i) => event(i))
    await usage.send(one)
    await usage.send(batch)
    // send resolved after acks=all: all 10 are on the topic
    expect(await count()).toBe(10)

    const consumer = kafka.consumer({ groupId: `it-sdk-${randomBytes(4).toString('hex')}`, maxWaitTimeInMs: 100 })
    const seen: { key: string; value: UsageEvent }[] = []
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    await new Promise<void>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => {
          seen.push({ key: message.key!.toString(), value: JSON.parse(message.value!.toString()) as UsageEvent })
          if (seen.length === 10) resolve()
        },
      })
    })
    await consumer.disconnect()
    for (const s of seen) expect(s.key).toBe(seriesKey(s.value))
    expect(seen.map((s) => s.value.event_id).sort()).toEqual([one, ...batch].map((e) => e.event_id).sort())

    await Promise.all([usage.close(), usage.close()])
    await expect(usage.send(event(99))).rejects.toThrow(/closed/)
  })

  it('reports an unreachable topic as a retriable Kafka error', async () => {
    const usage = createUsageProducer({ brokers, topic: `t${randomBytes(5).toString('hex')}.missing`, sendTimeoutMs: 1500 })
    try {
      const err = await usage.send(event(0)).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(DependencyError)
      expect(err).toMatchObject({ dependency: 'kafka', retriable: true, code: 'KAFKA_SEND_FAILED' })
    } finally {
      await usage.close()
    }
  })
})
