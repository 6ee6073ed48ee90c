/**
 * ClickHouse factory: a server over HTTP when CLICKHOUSE_URL is set, chDB (the in-process
 * ClickHouse engine) otherwise, both behind the same `@clickhouse/client` API, so every query
 * and migration is identical in both modes.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { createClient, ClickHouseLogLevel, type ClickHouseClient } from '@clickhouse/client'
import { DependencyError } from '../errors.ts'
import { findEmbeddedServer } from './embedded-server.ts'
import { SHARDED_CLIENT_SETTINGS } from './sharded-settings.ts'

export type { ClickHouseClient }

export interface ClickHouseSettings {
  url: string | null
  user: string
  password: string
  database: string
  /** chDB data directory (used when url is null); `:memory:` for an ephemeral engine */
  dataDir: string
  /** the sharded layout (shared/clickhouse/sharded.ts): its clients insert synchronously through Distributed tables */
  sharded?: { cluster: string; shardUrls: string[] } | null
}

export interface ClickHouseHandle {
  client: ClickHouseClient
  kind: 'server' | 'chdb'
  /** set when url was null and a running `burnwatch start` serves the chDB data dir: its HTTP address */
  embeddedServer?: string
  database: string
  /** chDB: a folder for the bulk-insert files of createClickHouseUsageStore; null on a server */
  stagingDir: string | null
  close(): Promise<void>
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/
/** the client's own console logging is off: its errors reach our code, which logs them with pino */
const quiet = { log: { level: ClickHouseLogLevel.OFF } }

export function assertIdentifier(name: string, what = 'database name'): string {
  if (!IDENT.test(name)) throw new DependencyError('clickhouse', `${what} '${name}' must be an identifier (letters, digits, _)`, { code: 'CH_BAD_IDENTIFIER', retriable: false })
  return name
}

/**
 * Opens ClickHouse and makes sure the database exists; `createDatabase: false` for a read-only
 * login (the dashboard's `burnwatch ui`), which may not create anything. Without a URL, a running
 * `burnwatch start` that serves the chDB data dir on loopback is used over HTTP (chDB in-process
 * could not open the folder it holds); else chDB in-process.
 */
export async function openClickHouse(s: ClickHouseSettings, opts: { createDatabase?: boolean } = {}): Promise<ClickHouseHandle> {
  assertIdentifier(s.database)
  if (!s.url && s.dataDir !== ':memory:') {
    const running = await findEmbeddedServer(s.dataDir)
    if (running) return { ...(await openEngine({ ...s, url: running.url, user: 'default', password: '' }, opts)), embeddedServer: running.url }
  }
  return openEngine(s, opts)
}

async function openEngine(s: ClickHouseSettings, opts: { createDatabase?: boolean }): Promise<ClickHouseHandle> {
  const database = assertIdentifier(s.database)
  if (s.url && opts.createDatabase !== false) {
    const admin = createClient({ url: s.url, username: s.user, password: s.password, request_timeout: 30_000, ...quiet })
    try {
      await admin.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` })
    } catch (err) {
      throw wrapClickHouseError(err, `cannot reach ClickHouse at ${redactUrl(s.url)} as user '${s.user}'`)
    } finally {
      await admin.close()
    }
  }
  if (s.url) {
    const client = createClient({
      url: s.url,
      username: s.user,
      password: s.password,
      database,
      request_timeout: 60_000,
      ...quiet,
      clickhouse_settings: { date_time_input_format: 'best_effort', output_format_json_quote_64bit_integers: 0, ...(s.sharded ? SHARDED_CLIENT_SETTINGS : {}) },
    })
    return { client, kind: 'server', database, stagingDir: null, close: () => client.close() }
  }
  const { createChdbConnection } = await import('chdb/connection')
  const path = s.dataDir === ':memory:' ? ':memory:' : resolve(s.dataDir, 'chdb')
  if (path !== ':memory:') mkdirSync(path, { recursive: true })
  // chdb bundles its own copy of @clickhouse/client-common's types; the runtime contract is the same
  let connection: NonNullable<Parameters<typeof createClient>[0]>['connection']
  try {
    connection = createChdbConnection({ path }) as unknown as typeof connection
  } catch (err) {
    throw new DependencyError('clickhouse', `cannot open chDB in ${path}: ${(err as Error).message}. Another Burnwatch process may hold it; stop it or set BURNWATCH_DATA_DIR to another folder`, { code: 'CHDB_OPEN', retriable: false, cause: err })
  }
  const boot = createClient({ connection, ...quiet })
  await boot.command({ query: `CREATE DATABASE IF NOT EXISTS ${database}` })
  const client = createClient({
    connection: inDatabase(connection!, database),
    ...quiet,
    clickhouse_settings: { date_time_input_format: 'best_effort', output_format_json_quote_64bit_integers: 0 },
  })
  const stagingDir = chooseStagingDir(path === ':memory:' ? null : resolve(s.dataDir, 'chdb-staging', database))
  return {
    client,
    kind: 'chdb',
    database,
    stagingDir: stagingDir.path,
    close: async () => {
      await client.close()
      if (stagingDir.temporary) rmSync(stagingDir.path, { recursive: true, force: true })
    },
  }
}

/**
 * chDB's connection ignores the client's `database` option (one engine, one session per
 * process), so every statement is run in the handle's database: `USE db;` before queries and
 * commands, and a qualified table name for inserts. Several databases can then share the engine.
 */
function inDatabase<C extends object>(connection: C, database: string): C {
  const unqualifiedInsert = /^(\s*INSERT\s+INTO\s+)(?![\w`"]+\.)/i
  return new Proxy(connection, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown
      if (typeof value !== 'function') return value
      const fn = value as (params: { query: string }) => unknown
      if (prop === 'query' || prop === 'command' || prop === 'exec') {
        return (params: { query: string }) => fn.call(target, { ...params, query: `USE ${database}; ${params.query}` })
      }
      if (prop === 'insert') {
        return (params: { query: string }) => fn.call(target, { ...params, query: params.query.replace(unqualifiedInsert, `$1${database}.`) })
      }
      return fn.bind(target)
    },
  })
}

/** ClickHouse reads these as glob patterns in a file() path: a staging path must not contain them. */
export const FILE_GLOB = /[*?{}[\]]/

/**
 * The folder for the bulk-insert files on chDB: `preferred` (in the data dir), else a fresh temp
 * folder. A path ClickHouse would read as a glob (`{a,b}`, `*`, `?`, `[…]`) is never used: an
 * INSERT … SELECT FROM file() whose glob matches nothing inserts nothing, without an error.
 * Files left by a process killed mid-insert are removed here, once per engine open.
 */
export function chooseStagingDir(preferred: string | null): { path: string; temporary: boolean } {
  if (preferred !== null && !FILE_GLOB.test(preferred)) {
    mkdirSync(preferred, { recursive: true })
    for (const f of readdirSync(preferred)) if (f.endsWith('.rowbinary')) rmSync(join(preferred, f), { force: true })
    return { path: preferred, temporary: false }
  }
  for (const base of [tmpdir(), '/tmp']) {
    if (FILE_GLOB.test(base)) continue
    const dir = mkdtempSync(join(base, 'burnwatch-staging-'))
    if (!FILE_GLOB.test(dir)) return { path: dir, temporary: true }
    rmSync(dir, { recursive: true, force: true })
  }
  throw new DependencyError('clickhouse', `no folder for chDB's insert files: ${preferred ?? tmpdir()} contains one of * ? { } [ ] (file() would read it as a pattern); set BURNWATCH_DATA_DIR or TMPDIR to a path without them`, { code: 'CHDB_STAGING', retriable: false })
}

export function redactUrl(url: string): string {
  try {
    const u = new URL(url)
    if (u.password) u.password = '***'
    return u.toString()
  } catch {
    return '(invalid URL)'
  }
}

/** ClickHouse server errors keep their code; network errors are retriable. */
export function wrapClickHouseError(err: unknown, context: string): DependencyError {
  const e = err as { code?: string; type?: string; message?: string }
  const networkCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'UND_ERR_SOCKET'])
  const retriable = e.code !== undefined && (networkCodes.has(e.code) || ['202', '159', '209', '210', '241', '242', '252', '319', '425', '999', '1000'].includes(e.code))
  return new DependencyError('clickhouse', `${context}: ${e.message ?? String(err)}`, { code: e.code ?? 'CH_ERROR', retriable, cause: err })
}
