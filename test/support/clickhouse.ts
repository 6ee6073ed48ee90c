/**
 * ClickHouse for tests, two paths, both in every run:
 * - the server path: CLICKHOUSE_URL if set; else Testcontainers when a Docker engine answers;
 *   else a local ClickHouse server served from the chDB library (infra/clickhouse/local-server.ts);
 * - the embedded path: chDB, the real ClickHouse engine in-process (each test process opens its own).
 */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { dockerAvailable } from './docker.ts'
import { openClickHouse, type ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { migrate } from '../../shared/clickhouse/migrate.ts'
import { startLocalClickHouse } from '../../infra/clickhouse/local-server.ts'

export interface ClickHouseTarget {
  source: 'env' | 'testcontainers' | 'local-server' | 'chdb'
  url: string | null
  user: string
  password: string
  /** the read-only login the local server declares in its config (it has no writable access storage), for `database` only */
  analyst?: { user: string; password: string; database: string }
}

export const EMBEDDED_TARGET: ClickHouseTarget = { source: 'chdb', url: null, user: 'default', password: '' }

/** The server path's ClickHouse. */
export async function provisionClickHouseServer(): Promise<{ target: ClickHouseTarget; stop(): Promise<void> }> {
  if (process.env.CLICKHOUSE_URL) {
    return {
      target: { source: 'env', url: process.env.CLICKHOUSE_URL, user: process.env.CLICKHOUSE_USER ?? 'default', password: process.env.CLICKHOUSE_PASSWORD ?? '' },
      stop: async () => {},
    }
  }
  if (await dockerAvailable()) {
    const { ClickHouseContainer } = await import('@testcontainers/clickhouse')
    // access management on, so the analyst role test can create a role and a user
    const c = await new ClickHouseContainer('clickhouse/clickhouse-server:25.8').withEnvironment({ CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT: '1' }).start()
    return {
      target: { source: 'testcontainers', url: c.getConnectionUrl(), user: c.getUsername(), password: c.getPassword() },
      stop: async () => {
        await c.stop()
      },
    }
  }
  const analyst = { user: 'bw_analyst', password: randomBytes(12).toString('hex'), database: `analyst_${randomBytes(4).toString('hex')}` }
  const server = await startLocalClickHouse({ analyst: { user: analyst.user, password: analyst.password, databases: [analyst.database] } })
  return {
    target: { source: 'local-server', url: server.url, user: 'default', password: '', analyst },
    stop: () => server.stop(),
  }
}

let chdbDir: string | null = null

/** The environment that points a Burnwatch config at the test engine, with a fresh database. */
export function testClickHouseEnv(target: ClickHouseTarget): Record<string, string> {
  if (target.url === null && chdbDir === null) chdbDir = mkdtempSync(join(tmpdir(), 'bw-chdb-'))
  return {
    CLICKHOUSE_DATABASE: `t_${randomBytes(5).toString('hex')}`,
    ...(target.url ? { CLICKHOUSE_URL: target.url, CLICKHOUSE_USER: target.user, CLICKHOUSE_PASSWORD: target.password, BURNWATCH_DATA_DIR: mkdtempSync(join(tmpdir(), 'bw-data-')) } : { BURNWATCH_DATA_DIR: chdbDir! }),
  }
}

/** A fresh database with the migrations applied, on the provisioned engine. */
export async function openTestClickHouse(target: ClickHouseTarget, opts: { migrate?: boolean; database?: string } = {}): Promise<ClickHouseHandle> {
  const database = opts.database ?? `t_${randomBytes(5).toString('hex')}`
  if (target.url === null && chdbDir === null) chdbDir = mkdtempSync(join(tmpdir(), 'bw-chdb-'))
  const h = await openClickHouse({ url: target.url, user: target.user, password: target.password, database, dataDir: chdbDir ?? '' })
  if (opts.migrate !== false) await migrate(h.client)
  return h
}
