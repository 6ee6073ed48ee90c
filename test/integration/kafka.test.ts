// The real broker (test/global-setup.ts provides 'kafkaBrokers'): idempotent produce with acks=all,
// consumer-group consumption with explicit offset commits, and resume-after-commit on rejoin.
import { randomBytes } from 'node:crypto'
import { Kafka, logLevel, type Admin, type Consumer, type Producer } from 'kafkajs'
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[]
    kafkaVersion: string
  }
}

const brokers = inject('kafkaBrokers')
const kafka = new Kafka({
  clientId: 'burnwatch-it-kafka',
  brokers,
  logLevel: logLevel.NOTHING,
  connectionTimeout: 3000,
  requestTimeout: 10_000,
  retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 8 },
})

let admin: Admin
let producer: Producer

beforeAll(async () => {
  console.log(`kafka: Apache Kafka ${inject('kafkaVersion') ?? 'unknown (global setup did not provide kafkaVersion)'} at ${brokers.join(',')}`)
  admin = kafka.admin()
  producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false })
  await Promise.all([admin.connect(), producer.connect()])
})

afterAll(async () => {
  await Promise.allSettled([producer?.disconnect(), admin?.disconnect()])
})

const uniqueName = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`

interface Seen {
  partition: number
  offset: bigint
  key: string
  value: string
}

/** Joins `groupId`, consumes until `count` messages arrived (then lingers `lingerMs` to catch extras), commits each, leaves the group. */
async function consumeAndCommit(groupId: string, topic: string, count: number, lingerMs = 0, timeoutMs = 30_000): Promise<Seen[]> {
  const consumer: Consumer = kafka.consumer({
    groupId,
    sessionTimeout: 6000,
    rebalanceTimeout: 10_000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 100,
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 8 },
  })
  const seen: Seen[] = []
  let reached!: () => void
  const enough = new Promise<void>((resolve) => (reached = resolve))
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        seen.push({ partition, offset: BigInt(message.offset), key: message.key?.toString() ?? '', value: message.value?.toString() ?? '' })
        await consumer.commitOffsets([{ topic, partition, offset: (BigInt(message.offset) + 1n).toString() }])
        if (seen.length >= count) reached()
      },
    })
    let timer: NodeJS.Timeout | undefined
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`group ${groupId}: got ${seen.length}/${count} messages in ${timeoutMs} ms`)), timeoutMs)
    })
    try {
      await Promise.race([enough, timedOut])
    } finally {
      clearTimeout(timer)
    }
    if (lingerMs > 0) await new Promise((r) => setTimeout(r, lingerMs))
  } finally {
    await consumer.disconnect()
  }
  return seen
}

const committedByPartition = async (groupId: string, topic: string) => {
  const [entry] = await admin.fetchOffsets({ groupId, topics: [topic] })
  return Object.fromEntries((entry?.partitions ?? []).map((p) => [p.partition, p.offset]))
}

const highWatermarks = async (topic: string) =>
  Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, p.high]))

describe('Kafka (real broker)', () => {
  it('produces idempotently, commits group offsets, and a rejoining group resumes after them', async () => {
    const topic = uniqueName('it-kafka')
    const groupId = uniqueName('it-group')
    expect(await admin.createTopics({ topics: [{ topic, numPartitions: 3, replicationFactor: 1 }], waitForLeaders: true })).toBe(true)

    const first = Array.from({ length: 60 }, (_, i) => ({ key: `k${i % 7}`, value: `first-${i}` }))
    const acks = await producer.send({ topic, acks: -1, messages: first })
    expect(acks.every((a) => a.errorCode === 0)).toBe(true)

    const round1 = await consumeAndCommit(groupId, topic, first.length)
    expect(round1.map((m) => m.value).sort()).toEqual(first.map((m) => m.value).sort())
    // Per-partition order is preserved and each key stays on one partition.
    for (const p of [0, 1, 2]) {
      const offsets = round1.filter((m) => m.partition === p).map((m) => m.offset)
      expect(offsets).toEqual([...offsets].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)))
    }
    const partitionOfKey = new Map<string, number>()
    for (const m of round1) {
      const p = partitionOfKey.get(m.key) ?? m.partition
      partitionOfKey.set(m.key, p)
      expect(m.partition).toBe(p)
    }

    // The committed offsets are the group's position: next offset = high watermark on every partition.
    const hw1 = await highWatermarks(topic)
    expect(await committedByPartition(groupId, topic)).toEqual(hw1)

    const second = Array.from({ length: 12 }, (_, i) => ({ key: `k${i % 7}`, value: `second-${i}` }))
    await producer.send({ topic, acks: -1, messages: second })

    // Same group again: only the new messages, nothing from round 1 redelivered (linger to catch extras).
    const round2 = await consumeAndCommit(groupId, topic, second.length, 750)
    expect(round2.map((m) => m.value).sort()).toEqual(second.map((m) => m.value).sort())
    for (const m of round2) expect(m.offset >= BigInt(hw1[m.partition] ?? 0)).toBe(true)

    const hw2 = await highWatermarks(topic)
    expect(Object.values(hw2).reduce((s, o) => s + Number(o), 0)).toBe(first.length + second.length)
    expect(await committedByPartition(groupId, topic)).toEqual(hw2)

    await admin.deleteTopics({ topics: [topic] })
  }, 90_000)
})
