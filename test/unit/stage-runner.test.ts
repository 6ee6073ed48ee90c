import { describe, expect, it } from 'vitest'
import { setTimeout as sleep } from 'node:timers/promises'
import { createInProcessBus } from '../../shared/bus/in-process.ts'
import type { BusBatch, BusMessage } from '../../shared/bus/port.ts'
import { DependencyError, ValidationError } from '../../shared/errors.ts'
import { createLogger } from '../../shared/logger.ts'
import { createRegistry } from '../../shared/metrics.ts'
import { healthOf } from '../../shared/health.ts'
import { retriability, retrying } from '../../shared/retry.ts'
import { createStageRunner, type StagePlan } from '../../shared/stage/runner.ts'

const logger = createLogger({ level: 'silent' })

async function waitFor(what: string, fn: () => boolean, ms = 10_000) {
  const end = Date.now() + ms
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

/** Reads every record of an in-process topic through a consumer group of its own. */
async function collect(bus: ReturnType<typeof createInProcessBus>, topic: string, into: BusMessage[]) {
  const c = bus.consumer({ groupId: `reader-${topic}`, topics: [topic] })
  await c.start(async (b) => void into.push(...b.messages))
  return c
}

describe('retry policy', () => {
  it('retries what says it is retriable, never a TypeError, and an error that says nothing only a few times', async () => {
    expect(retriability(new TypeError('x'))).toBe(false)
    expect(retriability(new DependencyError('clickhouse', 'down', { code: 'ECONNREFUSED', retriable: true }))).toBe(true)
    expect(retriability(new ValidationError('bad'))).toBe(false)
    expect(retriability(Object.assign(new Error('reset'), { code: 'ECONNRESET' }))).toBe(true)
    expect(retriability(new Error('who knows'))).toBe(null)

    let n = 0
    await expect(retrying(async () => { n++; throw new TypeError('bug') }, { minTimeout: 1, maxTimeout: 2 })).rejects.toThrow('bug')
    expect(n).toBe(1)
    n = 0
    await expect(retrying(async () => { n++; throw new Error('unknown') }, { minTimeout: 1, maxTimeout: 2, unknownAttempts: 3 })).rejects.toThrow('unknown')
    expect(n).toBe(3)
    n = 0
    const v = await retrying(async () => {
      if (++n < 6) throw new DependencyError('kafka', 'not yet', { code: 'X', retriable: true })
      return 'ok'
    }, { minTimeout: 1, maxTimeout: 2, unknownAttempts: 1 })
    expect([v, n]).toEqual(['ok', 6])
  })
})

describe('stage runner', () => {
  it('stores, publishes, applies in that order; retries a retriable store; commits only after', async () => {
    const bus = createInProcessBus({ partitions: 1 })
    const registry = createRegistry()
    const steps: string[] = []
    let failures = 2
    const runner = createStageRunner({
      stage: 'test', bus, groupId: 'g', topics: ['in'], deadLetterTopic: 'dlq', logger, registry, retry: { minTimeout: 1, maxTimeout: 5 },
      plan: async (b: BusBatch): Promise<StagePlan> => ({
        store: async () => {
          steps.push(`store ${b.messages.length}`)
          if (failures-- > 0) throw new DependencyError('clickhouse', 'down', { code: 'ECONNREFUSED', retriable: true })
        },
        publish: [{ topic: 'out', messages: b.messages.map((m) => ({ key: m.key, value: m.value.toUpperCase() })) }],
        apply: () => void steps.push('apply'),
      }),
    })
    const out: BusMessage[] = []
    const reader = await collect(bus, 'out', out)
    await runner.start()
    const p = await bus.producer()
    await p.send('in', [{ key: 'k', value: 'a' }, { key: 'k', value: 'b' }])
    await waitFor('the batch to be applied', () => steps.includes('apply'))
    expect(steps).toEqual(['store 2', 'store 2', 'store 2', 'apply'])
    await waitFor('published', () => out.length === 2)
    expect(out.map((m) => m.value)).toEqual(['A', 'B'])
    let lag = -1
    await waitFor('the commit', () => (void bus.lag('g', 'in').then((l) => (lag = l)), lag === 0))
    expect(await registry.getSingleMetric('burnwatch_stage_failures_total')!.get()).toMatchObject({ values: [{ labels: { stage: 'test', step: 'store', retriable: 'true' }, value: 2 }] })
    await runner.stop()
    await reader.stop()
  })

  it('narrows a batch that cannot succeed to the record at fault, dead-letters it with the reason, and moves on', async () => {
    const bus = createInProcessBus({ partitions: 1 })
    const stored: string[] = []
    let applied = 0
    const runner = createStageRunner({
      stage: 'test', bus, groupId: 'g', topics: ['in'], deadLetterTopic: 'dlq', logger, registry: createRegistry(), retry: { minTimeout: 1, maxTimeout: 5 },
      plan: async (b) => ({
        store: async () => {
          // ClickHouse refusing the block for good (not retriable) whenever the poison record is in it
          if (b.messages.some((m) => m.value === 'poison')) throw new DependencyError('clickhouse', 'refused: too many partitions', { code: '252X', retriable: false })
          stored.push(...b.messages.map((m) => m.value))
        },
        apply: () => void (applied += b.messages.length),
      }),
    })
    const dlq: BusMessage[] = []
    const reader = await collect(bus, 'dlq', dlq)
    await runner.start()
    const p = await bus.producer()
    const values = Array.from({ length: 9 }, (_, i) => (i === 5 ? 'poison' : `v${i}`))
    await p.send('in', values.map((value) => ({ key: null, value })))
    await waitFor('the dead letter', () => dlq.length === 1)
    await waitFor('the rest stored', () => stored.length === 8)
    expect(stored).toEqual(values.filter((v) => v !== 'poison'))
    expect(applied).toBe(8)
    expect(dlq[0]!.value).toBe('poison')
    expect(dlq[0]!.headers).toMatchObject({ source_topic: 'in', source_partition: '0', source_offset: '5', stage: 'test' })
    expect(dlq[0]!.headers.reason).toContain('store failed: refused: too many partitions')
    // the partition moved on: later records are stored
    await p.send('in', [{ key: null, value: 'later' }])
    await waitFor('a later record stored', () => stored.includes('later'))
    await runner.stop()
    await reader.stop()
  })

  it('dead-letters the invalid records a plan names and stores the rest', async () => {
    const bus = createInProcessBus({ partitions: 1 })
    const stored: string[] = []
    const runner = createStageRunner({
      stage: 'test', bus, groupId: 'g', topics: ['in'], deadLetterTopic: 'dlq', logger, registry: createRegistry(),
      plan: async (b) => {
        const bad = b.messages.filter((m) => !/^\d+$/.test(m.value))
        const good = b.messages.filter((m) => /^\d+$/.test(m.value))
        return { deadLetters: bad.map((message) => ({ message, reason: 'not a number' })), store: async () => void stored.push(...good.map((m) => m.value)) }
      },
    })
    const dlq: BusMessage[] = []
    const reader = await collect(bus, 'dlq', dlq)
    await runner.start()
    await (await bus.producer()).send('in', ['1', 'x', '2'].map((value) => ({ key: null, value })))
    await waitFor('stored', () => stored.length === 2)
    await waitFor('dead letter', () => dlq.length === 1)
    expect(dlq[0]!.headers.reason).toBe('not a number')
    await runner.stop()
    await reader.stop()
  })

  it('reports a partition stuck on a retriable failure in the process health until it recovers', async () => {
    const bus = createInProcessBus({ partitions: 1 })
    const registry = createRegistry()
    let down = true
    const runner = createStageRunner({
      stage: 'test', bus, groupId: 'g', topics: ['in'], deadLetterTopic: 'dlq', logger, registry, retry: { minTimeout: 5, maxTimeout: 20 }, stuckAfterMs: 50,
      plan: async () => ({
        store: async () => {
          if (down) throw new DependencyError('clickhouse', 'down', { code: 'ECONNREFUSED', retriable: true })
        },
      }),
    })
    await runner.start()
    await (await bus.producer()).send('in', [{ key: null, value: 'a' }])
    await waitFor('stuck reported', () => healthOf(registry).problems().some((p) => p.state === 'stuck' && p.component === 'test in/0'))
    expect(runner.inFlight('in/0')).toBe(true)
    down = false
    await waitFor('recovered', () => healthOf(registry).problems().length === 0 && !runner.inFlight('in/0'))
    expect(await bus.lag('g', 'in')).toBe(0)
    await runner.stop()
  })

  it('in-process bus: a handler error is logged (not swallowed) and the same batch comes again', async () => {
    const lines: Record<string, unknown>[] = []
    const destination = { write: (l: string) => void lines.push(JSON.parse(l) as Record<string, unknown>) }
    const bus = createInProcessBus({ partitions: 1, logger: createLogger({ level: 'warn', destination }) })
    const seen: string[] = []
    const c = bus.consumer({ groupId: 'g', topics: ['in'] })
    await c.start(async (b) => {
      seen.push(b.messages.map((m) => m.value).join(','))
      if (seen.length === 1) throw new DependencyError('clickhouse', 'insert failed: down', { code: 'ECONNREFUSED', retriable: true })
    })
    await (await bus.producer()).send('in', [{ key: null, value: 'a' }, { key: null, value: 'b' }])
    await waitFor('the batch again', () => seen.length >= 2)
    await c.stop()
    expect(seen.slice(0, 2)).toEqual(['a,b', 'a,b'])
    const warn = lines.find((l) => l.msg === 'batch handler failed; retrying the same batch')
    expect(warn).toMatchObject({ topic: 'in', partition: 0, offset: '0', groupId: 'g', err: { message: 'insert failed: down', code: 'ECONNREFUSED' } })
  })

  it('retries an error that does not say whether a retry helps, rather than setting records aside for a passing hiccup', async () => {
    const bus = createInProcessBus({ partitions: 1 })
    let failures = 8
    const stored: string[] = []
    const runner = createStageRunner({
      stage: 'test', bus, groupId: 'g', topics: ['in'], deadLetterTopic: 'dlq', logger, registry: createRegistry(), retry: { minTimeout: 1, maxTimeout: 5 },
      plan: async (b) => ({
        store: async () => {
          // e.g. a ClickHouse server error the store did not classify
          if (failures-- > 0) throw Object.assign(new Error('Code: 999. something passing'), { code: '999' })
          stored.push(...b.messages.map((m) => m.value))
        },
      }),
    })
    const dlq: BusMessage[] = []
    const reader = await collect(bus, 'dlq', dlq)
    await runner.start()
    await (await bus.producer()).send('in', [{ key: null, value: 'a' }, { key: null, value: 'b' }])
    await waitFor('stored after the hiccup', () => stored.length === 2)
    expect(dlq).toEqual([])
    expect(runner.stats().deadLettered).toBe(0)
    await runner.stop()
    await reader.stop()
  })
})
