import { describe, expect, it } from 'vitest'
import snappy from 'snappy'
import { splitByMonth, MAX_PARTITIONS_PER_INSERT } from '../../services/aggregator/clickhouse-store.ts'
import { createSeriesGate, OVERFLOW } from '../../shared/series-caps.ts'
import { createPricer, PRICE_CACHE_LIMIT } from '../../services/aggregator/pricing.ts'
import { snappyDecompress } from '../../shared/bus/codecs.ts'
import { ConfigFileSchema } from '../../shared/config.ts'

describe('inserts never span more monthly partitions than ClickHouse accepts', () => {
  it('splits 500 rows over 101 months into groups of at most 50 months, deterministically', () => {
    const rows = Array.from({ length: 500 }, (_, i) => ({ timestamp: Date.UTC(2018, i % 101, 3), i }))
    const groups = splitByMonth(rows)
    expect(groups.length).toBe(3)
    for (const g of groups) expect(new Set(g.map((r) => new Date(r.timestamp).toISOString().slice(0, 7))).size).toBeLessThanOrEqual(MAX_PARTITIONS_PER_INSERT)
    expect(groups.flat().map((r) => r.i).sort((a, b) => a - b)).toEqual(rows.map((r) => r.i))
    // the same groups (so the same deduplication tokens) for the same rows
    const ids = (gs: { i: number }[][]) => gs.map((g) => g.map((r) => r.i).sort((a, b) => a - b))
    expect(ids(splitByMonth(rows))).toEqual(ids(groups))
    expect(ids(splitByMonth([...rows].reverse()))).toEqual(ids(groups))
    const one = rows.filter((r) => r.timestamp < Date.UTC(2019, 0, 1))
    expect(splitByMonth(one)).toEqual([one])
  })
})

describe('series caps', () => {
  it('counts series past the team cap in the team overflow series, past the total cap in the overflow team, and frees idle series', () => {
    const g = createSeriesGate({ perTeam: 2, total: 3, idleMs: 1000 })
    expect(g.admit('a', 'a1', 0)).toBeNull()
    expect(g.admit('a', 'a2', 0)).toBeNull()
    expect(g.admit('a', 'a3', 0)).toEqual({ team: 'a', endpoint: OVERFLOW, model: OVERFLOW })
    expect(g.admit('b', 'b1', 0)).toBeNull()
    expect(g.admit('b', 'b2', 0)).toEqual({ team: 'b', endpoint: OVERFLOW, model: OVERFLOW })
    expect(g.admit('c', 'c1', 0)).toEqual({ team: OVERFLOW, endpoint: OVERFLOW, model: OVERFLOW })
    expect(g.active()).toBe(3)
    expect(g.takeOverflow()).toEqual({ team_cap: 1, total_cap: 2, teams: ['a', 'b', 'c'] })
    expect(g.admit('a', 'a1', 900)).toBeNull()
    expect(g.evictIdle(1500)).toBe(2)
    expect(g.active()).toBe(1)
    expect(g.admit('c', 'c1', 1500)).toBeNull()
  })

  it('one window length: the config refuses anything but 1m, saying why', () => {
    expect(ConfigFileSchema.safeParse({ defaults: { window: '1m' } }).success).toBe(true)
    const r = ConfigFileSchema.safeParse({ defaults: { window: '30s' } })
    expect(r.success).toBe(false)
    expect(JSON.stringify(r.error?.issues)).toContain('defaults.window must be 1m')
  })

  it('the price cache stays bounded whatever model names arrive', () => {
    let lookups = 0
    const pricer = createPricer({ prices: [], gpu_hour_usd: 0 }, () => (lookups++, null))
    for (let i = 0; i < PRICE_CACHE_LIMIT * 3; i++) pricer.rates(`model-${i}`)
    expect(lookups).toBe(PRICE_CACHE_LIMIT * 3)
    pricer.rates(`model-${PRICE_CACHE_LIMIT * 3 - 1}`)
    expect(lookups).toBe(PRICE_CACHE_LIMIT * 3) // the recent ones are still cached
  })
})

describe('snappy as Kafka carries it', () => {
  it('reads raw blocks (librdkafka) and the xerial framing of the Java client', async () => {
    const text = Buffer.from('{"event_id":"e1"}'.repeat(500))
    expect(await snappyDecompress(await snappy.compress(text))).toEqual(text)
    const half = text.length / 2
    const blocks = [await snappy.compress(text.subarray(0, half)), await snappy.compress(text.subarray(half))]
    const header = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1])
    const framed = Buffer.concat([header, ...blocks.flatMap((b) => [lenBE(b.length), b])])
    expect(await snappyDecompress(framed)).toEqual(text)
  })
})

function lenBE(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}
