/**
 * The sharded layout for users who outgrow one server (docs/clickhouse.md, "Sharded layout"):
 * per-shard tables in `<database>_shard` on every shard (the numbered migrations, unchanged),
 * Distributed tables of the same names in `<database>` on every server, sharded by series key
 * (infra/clickhouse/sharded/distributed.sql), and the `series_rolling` view over them. Chosen by
 * CLICKHOUSE_CLUSTER (a cluster of the servers' remote_servers) with CLICKHOUSE_SHARD_URLS (the HTTP
 * address of each shard, for DDL: without Keeper there is no ON CLUSTER); applied by `burnwatch migrate`.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { createClient, ClickHouseLogLevel } from '@clickhouse/client'
import { assertIdentifier } from './client.ts'
import { MIGRATIONS_DIR, migrate, splitStatements, type MigrationResult } from './migrate.ts'
import type { ClickHouseHandle, ClickHouseSettings } from './client.ts'
export { SHARDED_CLIENT_SETTINGS } from './sharded-settings.ts'

export const DISTRIBUTED_SQL = fileURLToPath(new URL('../../infra/clickhouse/sharded/distributed.sql', import.meta.url))

export interface ShardedLayout {
  cluster: string
  /** HTTP URL of every shard */
  shardUrls: string[]
  user: string
  password: string
  database: string
}

export const shardDatabase = (database: string) => `${database}_shard`

/** The Distributed tables' DDL for `database`, from infra/clickhouse/sharded/distributed.sql. */
export function distributedStatements(database: string, cluster: string): string[] {
  const vars: Record<string, string> = { database: assertIdentifier(database), shard_database: assertIdentifier(shardDatabase(database)), cluster: assertIdentifier(cluster, 'cluster name') }
  return splitStatements(readFileSync(DISTRIBUTED_SQL, 'utf8')).map((s) => s.replace(/\{(database|shard_database|cluster)\}/g, (_, k: string) => vars[k]!))
}

/** Applies the sharded layout on every shard; idempotent like the migrations. */
export async function migrateSharded(l: ShardedLayout): Promise<{ shards: number; statements: number }> {
  const shardDb = assertIdentifier(shardDatabase(l.database))
  const entryDb = assertIdentifier(l.database)
  let statements = 0
  for (const url of l.shardUrls) {
    const root = createClient({ url, username: l.user, password: l.password, log: { level: ClickHouseLogLevel.OFF } })
    const local = createClient({ url, username: l.user, password: l.password, database: shardDb, log: { level: ClickHouseLogLevel.OFF } })
    const entry = createClient({ url, username: l.user, password: l.password, database: l.database, log: { level: ClickHouseLogLevel.OFF } })
    try {
      await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${shardDb}` })
      await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${entryDb}` })
      statements += (await migrate(local)).statements
      for (const query of distributedStatements(l.database, l.cluster)) {
        await root.command({ query })
        statements++
      }
      // the views of the migrations, over the Distributed tables
      for (const f of ['006_series_rolling.sql']) {
        for (const query of splitStatements(readFileSync(`${MIGRATIONS_DIR}/${f}`, 'utf8'))) {
          await entry.command({ query })
          statements++
        }
      }
    } finally {
      await Promise.all([root.close(), local.close(), entry.close()])
    }
  }
  return { shards: l.shardUrls.length, statements }
}

/** The schema for `s`: the sharded layout on every shard when a cluster is configured, else the migrations on `h`. */
export async function applySchema(h: ClickHouseHandle, s: ClickHouseSettings): Promise<MigrationResult & { shards: number | null }> {
  if (!s.sharded) return { ...(await migrate(h.client)), shards: null }
  if (!s.sharded.shardUrls.length) throw new Error('CLICKHOUSE_CLUSTER is set without CLICKHOUSE_SHARD_URLS (or CLICKHOUSE_URL): the HTTP address of every shard is needed to create the per-shard tables')
  const r = await migrateSharded({ cluster: s.sharded.cluster, shardUrls: s.sharded.shardUrls, user: s.user, password: s.password, database: h.database })
  return { applied: ['sharded/distributed.sql'], statements: r.statements, shards: r.shards }
}
