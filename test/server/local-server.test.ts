/**
 * The local ClickHouse server from the chDB library (infra/clickhouse/local-server.ts): it listens
 * on loopback only, keeps its data across kill -9 and restart, stops cleanly, and serves
 * @clickhouse/client unchanged (parameters, dedup tokens).
 */
import { networkInterfaces } from 'node:os'
import { afterAll, describe, expect, it } from 'vitest'
import { createClient } from '@clickhouse/client'
import { startLocalClickHouse, type LocalClickHouse } from '../../infra/clickhouse/local-server.ts'

let ch: LocalClickHouse | null = null
afterAll(async () => {
  await ch?.stop()
})

describe('local ClickHouse server', () => {
  it('serves @clickhouse/client on loopback, survives kill -9, stops cleanly', async () => {
    ch = await startLocalClickHouse()
    const client = () => createClient({ url: ch!.url })
    const c1 = client()
    await c1.command({ query: 'CREATE TABLE t (k String, v UInt64) ENGINE = MergeTree ORDER BY k SETTINGS non_replicated_deduplication_window = 100' })
    // the same insert twice with one token is stored once (what the aggregator relies on after a crash)
    for (let i = 0; i < 2; i++) await c1.insert({ table: 't', values: [{ k: 'a', v: 1 }, { k: 'b', v: 2 }], format: 'JSONEachRow', clickhouse_settings: { insert_deduplication_token: 'batch-1' } })
    const count = async (c: ReturnType<typeof client>) => {
      const rs = await c.query({ query: 'SELECT count() AS n, sum(v) AS s FROM t WHERE k != {skip:String}', query_params: { skip: 'none' }, format: 'JSONEachRow' })
      const [r] = await rs.json<{ n: string | number; s: string | number }>()
      return { n: Number(r?.n), s: Number(r?.s) }
    }
    expect(await count(c1)).toEqual({ n: 2, s: 3 })
    await c1.close()

    // not reachable on any other interface
    const external = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)
    if (external) await expect(fetch(`http://${external.address}:${ch.httpPort}/ping`)).rejects.toThrow()

    const pid = ch.pid
    await ch.kill()
    expect(() => process.kill(pid, 0)).toThrow()
    await ch.restart()
    const c2 = client()
    expect(await count(c2)).toEqual({ n: 2, s: 3 })
    await c2.close()

    const last = ch.pid
    await ch.stop()
    await ch.stop()
    expect(() => process.kill(last, 0)).toThrow()
  })
})
