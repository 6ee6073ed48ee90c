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
import { MIGRATIONS_DIR, migrate, splitStatements } from './migrate.ts'

export const DISTRIBUTED_SQL = fileURLToPath(new URL('../../infra/clickhouse/sharded/distributed.sql', import.meta.url))

export interface ShardedLayout {
  cluster: string
  /** HTTP URL of every shard */
  shardUrls: string[]
  user: string
  password: string
  database: string
}

/**
 * Settings of every client of the sharded layout: an insert through a Distributed table is stored
 * on its shard before the answer (so an acknowledged insert is durable and its deduplication token
 * applies there), and a subquery over a Distributed table inside IN/JOIN runs once, globally
 * (the default, 'deny', refuses the documented queries that use one).
 */
export const SHARDED_CLIENT_SETTINGS = { distributed_foreground_insert: 1, distributed_product_mode: 'global' } as const

export const shardDatabase = (database: string) => `${database}_shard`

/** The Distributed tables' DDL for `database`, from infra/clickhouse/sharded/distributed.sql. */
export function distributedStatements(database: string, cluster: string): string[] {
  const vars: Record<string, string> = { database: assertIdentifier(database), shard_database: assertIdentifier(shardDatabase(database)), cluster: assertIdentifier(cluster, 'cluster name') }
  return splitStatements(readFileSync(DISTRIBUTED_SQL, 'utf8')).map((s) => s.replace(/\{(database|shard_database|cluster)\}/g, (_, k: string) => vars[k]!))
}

/** Applies the sharded layout on every shard; idempotent like the migrations. */
export async function migrateSharded(l: ShardedLayout): Promise<{ shards: number; statements: number }> {
  const shardDb = shardDatabase(l.database)
  let statements = 0
  for (const url of l.shardUrls) {
    const root = createClient({ url, username: l.user, password: l.password, log: { level: ClickHouseLogLevel.OFF } })
    const local = createClient({ url, username: l.user, password: l.password, database: shardDb, log: { level: ClickHouseLogLevel.OFF } })
    const entry = createClient({ url, username: l.user, password: l.password, database: l.database, log: { level: ClickHouseLogLevel.OFF } })
    try {
      for (const db of [shardDb, l.database]) await root.command({ query: `CREATE DATABASE IF NOT EXISTS ${assertIdentifier(db)}` })
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
