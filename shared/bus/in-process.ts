/**
 * In-process bus for the embedded mode: the same port as Kafka, in memory, in one process.
 * Topics keep their messages (like a log) until every group consumed them; offsets are
 * per group and partition. Nothing here survives the process: a graceful stop drains every
 * stage's input before stopping it (services/cli/stages.ts), so nothing accepted is lost, but
 * a crash (kill -9, power loss) loses what was accepted and not yet stored in chDB. The
 * distributed mode (Kafka, acks=all) is the durable one; docs/reliability.md says so.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from '../logger.ts'
import { retriability } from '../retry.ts'
import type { Bus, BusBatch, BusConsumer, BusMessage, BusProducer, ConsumerOptions, BatchHandler, OutgoingMessage } from './port.ts'
import { partitionFor } from './partitioner.ts'

interface Partition {
  base: number
  messages: BusMessage[]
  waiters: Set<() => void>
}

/** Records kept per partition of a topic no group of this process reads. */
const UNREAD_KEEP = 10_000

export function createInProcessBus(opts: { partitions?: number; logger?: Logger } = {}): Bus {
  const defaultPartitions = opts.partitions ?? 3
  const log = opts.logger?.child({ component: 'in-process-bus' }) ?? null
  const topics = new Map<string, Partition[]>()
  const groups = new Map<string, Map<string, number>>() // group → "topic/partition" → next offset
  /** topic → the groups that consume it: only those hold its records back */
  const readers = new Map<string, Set<string>>()
  let rr = 0
  const consumers = new Set<BusConsumer>()

  const topic = (name: string, partitions = defaultPartitions): Partition[] => {
    let t = topics.get(name)
    if (!t) {
      t = Array.from({ length: partitions }, () => ({ base: 0, messages: [], waiters: new Set<() => void>() }))
      topics.set(name, t)
    }
    return t
  }

  const groupOffsets = (g: string) => {
    let m = groups.get(g)
    if (!m) groups.set(g, (m = new Map()))
    return m
  }

  const bus: Bus = {
    kind: 'in-process',
    async ensureTopics(list) {
      for (const t of list) topic(t.topic, t.partitions)
    },
    async producer(): Promise<BusProducer> {
      return {
        async send(name: string, messages: OutgoingMessage[]) {
          const parts = topic(name)
          const now = Date.now()
          for (const m of messages) {
            const p = partitionFor(m.key, parts.length, rr++)
            const part = parts[p]!
            part.messages.push({ topic: name, partition: p, offset: String(part.base + part.messages.length), key: m.key, value: m.value, headers: m.headers ?? {}, timestamp: now })
            for (const w of part.waiters) w()
            part.waiters.clear()
          }
          // a topic nobody in this process reads (the dead-letter topic in the embedded mode) keeps only its latest records
          if (!readers.has(name)) for (const part of parts) if (part.messages.length > UNREAD_KEEP) {
            const drop = part.messages.length - UNREAD_KEEP
            part.messages.splice(0, drop)
            part.base += drop
          }
        },
        async stop() {},
      }
    },
    consumer(o: ConsumerOptions): BusConsumer {
      let running = false
      let loops: Promise<void>[] = []
      const listeners: ((a: { topic: string; partitions: number[] }[]) => void)[] = []
      const wakeAll: (() => void)[] = []
      const max = o.maxBatchMessages ?? 5000
      const c: BusConsumer = {
        onAssign(l) {
          listeners.push(l)
        },
        async start(handler: BatchHandler) {
          if (running) return
          running = true
          const offsets = groupOffsets(o.groupId)
          for (const t of o.topics) {
            let r = readers.get(t)
            if (!r) readers.set(t, (r = new Set()))
            r.add(o.groupId)
          }
          const assigned = o.topics.map((t) => ({ topic: t, partitions: topic(t).map((_, i) => i) }))
          for (const l of listeners) l(assigned)
          for (const a of assigned) {
            for (const p of a.partitions) {
              loops.push(
                (async () => {
                  const part = topic(a.topic)[p]!
                  const k = `${a.topic}/${p}`
                  let backoff = 50
                  let failures = 0
                  while (running) {
                    const next = offsets.get(k) ?? (o.fromBeginning === false ? part.base + part.messages.length : part.base)
                    const idx = next - part.base
                    if (idx >= part.messages.length) {
                      await new Promise<void>((res) => {
                        part.waiters.add(res)
                        wakeAll.push(res)
                      })
                      continue
                    }
                    const messages = part.messages.slice(idx, idx + max)
                    const batch: BusBatch = { topic: a.topic, partition: p, messages, lag: part.messages.length - idx - messages.length }
                    try {
                      await handler(batch, { heartbeat: async () => {}, isRunning: () => running })
                      offsets.set(k, next + messages.length)
                      backoff = 50
                      failures = 0
                      compact(a.topic, p)
                    } catch (err) {
                      // at least once: the same batch again after a jittered backoff; never dropped, always logged
                      failures++
                      const retriable = retriability(err) !== false
                      if (failures === 1 || failures % 20 === 0) {
                        const line = { err, topic: a.topic, partition: p, offset: String(next), attempt: failures, groupId: o.groupId }
                        if (retriable) log?.warn(line, 'batch handler failed; retrying the same batch')
                        else log?.error(line, 'batch handler failed with an error no retry can help; retrying the same batch (nothing is dropped)')
                      }
                      await sleep(backoff * (1 + Math.random()))
                      backoff = Math.min(backoff * 2, 5000)
                    }
                  }
                })(),
              )
            }
          }
        },
        async stop() {
          if (!running) return
          running = false
          for (const w of wakeAll.splice(0)) w()
          await Promise.all(loops)
          loops = []
          consumers.delete(c)
        },
      }
      consumers.add(c)
      return c
    },
    async partitions(name) {
      return topics.get(name)?.length ?? 0
    },
    async lag(groupId, name) {
      const offsets = groupOffsets(groupId)
      return topic(name).reduce((sum, part, p) => sum + (part.base + part.messages.length - (offsets.get(`${name}/${p}`) ?? part.base)), 0)
    },
    async stop() {
      await Promise.all([...consumers].map((c) => c.stop()))
    },
  }

  /** drops messages every group that reads the topic has consumed, so memory stays bounded */
  function compact(name: string, p: number) {
    const part = topic(name)[p]!
    let min = part.base + part.messages.length
    for (const g of readers.get(name) ?? []) {
      const off = groupOffsets(g).get(`${name}/${p}`)
      min = Math.min(min, off ?? part.base)
    }
    const drop = min - part.base
    if (drop > 1024) {
      part.messages.splice(0, drop)
      part.base = min
    }
  }

  return bus
}
