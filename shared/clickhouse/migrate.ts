/**
 * Applies the numbered SQL migrations in infra/clickhouse/migrations/ in order. Each file is
 * idempotent (IF NOT EXISTS), so applying twice changes nothing; applied files are recorded
 * in `schema_migrations` for operators.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { ClickHouseClient } from '@clickhouse/client'

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../infra/clickhouse/migrations/', import.meta.url))

/** Splits a migration file into statements (`;` at line end), dropping `--` comments. */
export function splitStatements(sql: string): string[] {
  const noComments = sql
    .split('\n')
    .map((l) => (l.trimStart().startsWith('--') ? '' : l))
    .join('\n')
  return noComments
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean)
}

export interface MigrationResult {
  applied: string[]
  statements: number
}

export async function migrate(client: ClickHouseClient, dir = MIGRATIONS_DIR): Promise<MigrationResult> {
  await client.command({
    query: `CREATE TABLE IF NOT EXISTS schema_migrations (name String, applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree(applied_at) ORDER BY name`,
  })
  const files = readdirSync(dir)
    .filter((f) => /^\d+_.+\.sql$/.test(f))
    .sort()
  let statements = 0
  for (const f of files) {
    for (const stmt of splitStatements(readFileSync(`${dir}/${f}`, 'utf8'))) {
      await client.command({ query: stmt })
      statements++
    }
    await client.insert({ table: 'schema_migrations', values: [{ name: f }], format: 'JSONEachRow' })
  }
  return { applied: files, statements }
}
