/**
 * Embedded mode without chDB's file lock. `burnwatch start` with no CLICKHOUSE_URL serves its
 * chDB data folder (<data dir>/chdb) as a ClickHouse server on loopback (infra/clickhouse/
 * local-server.ts), so that every other process — `burnwatch silence`, `silences`, `doctor`,
 * clickhouse-client, DBeaver, Grafana — reaches the same data over the ClickHouse HTTP (or native)
 * protocol while it runs, instead of failing on "Cannot lock file …/status". The server's address
 * is written to <data dir>/clickhouse-server/server.json for the other processes; analysts log in
 * read-only as `analyst` with the password in <data dir>/clickhouse-server/analyst-password (or
 * BURNWATCH_ANALYST_PASSWORD). Where no server can be launched (no gcc and no python3), start
 * falls back to chDB in-process and says so.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { join, resolve } from 'node:path'
import type { EmbeddedServerConfig } from '../config.ts'
import { LauncherUnavailableError, startLocalClickHouse, type LocalClickHouse } from '../../infra/clickhouse/local-server.ts'

export const ANALYST_LOGIN = 'analyst'

export interface EmbeddedServerInfo {
  url: string
  httpPort: number
  tcpPort: number
  /** the `burnwatch start` process that owns the server */
  ownerPid: number
  database: string
}

const serverDir = (dataDir: string) => resolve(dataDir, 'clickhouse-server')
const infoFile = (dataDir: string) => join(serverDir(dataDir), 'server.json')

/** The analyst password: the configured one (BURNWATCH_ANALYST_PASSWORD), else one generated once and kept (0600) in the data dir. */
export function analystPassword(dataDir: string, configured: string | null): { password: string; file: string | null } {
  if (configured) return { password: configured, file: null }
  const file = join(serverDir(dataDir), 'analyst-password')
  if (existsSync(file)) return { password: readFileSync(file, 'utf8').trim(), file }
  mkdirSync(serverDir(dataDir), { recursive: true })
  const password = randomBytes(18).toString('base64url')
  writeFileSync(file, `${password}\n`, { mode: 0o600 })
  return { password, file }
}

async function portFree(port: number): Promise<boolean> {
  return new Promise((ok) => {
    const srv = createServer()
    srv.once('error', () => ok(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => ok(true)))
  })
}

export type EmbeddedServerResult =
  | { status: 'started'; server: LocalClickHouse; info: EmbeddedServerInfo; passwordFile: string | null; stop(): Promise<void> }
  | { status: 'unavailable'; reason: string }

/**
 * Starts the server on the chDB data of `dataDir`: HTTP on the configured port (CLICKHOUSE_HTTP_PORT,
 * default 8123; a free port when it is taken), native likewise (CLICKHOUSE_TCP_PORT, default 9000).
 */
export async function startEmbeddedServer(dataDir: string, database: string, cfg: EmbeddedServerConfig): Promise<EmbeddedServerResult> {
  const dir = serverDir(dataDir)
  mkdirSync(dir, { recursive: true })
  const wanted = async (port: number) => ((await portFree(port)) ? port : undefined)
  const { password, file } = analystPassword(dataDir, cfg.analystPassword)
  let server: LocalClickHouse
  try {
    const httpPort = await wanted(cfg.httpPort)
    const tcpPort = await wanted(cfg.tcpPort)
    server = await startLocalClickHouse({
      dataDir: dir,
      path: resolve(dataDir, 'chdb'),
      ...(httpPort ? { httpPort } : {}),
      ...(tcpPort ? { tcpPort } : {}),
      analyst: { user: ANALYST_LOGIN, password, databases: [database] },
    })
  } catch (err) {
    // no launcher here, or the server would not start (e.g. this process already opened the folder with chDB)
    const reason = err instanceof LauncherUnavailableError ? err.message : `the server did not start: ${(err as Error).message.split('\n')[0]}`
    return { status: 'unavailable', reason }
  }
  const info: EmbeddedServerInfo = { url: server.url, httpPort: server.httpPort, tcpPort: server.tcpPort, ownerPid: process.pid, database }
  writeFileSync(infoFile(dataDir), JSON.stringify(info, null, 2) + '\n', { mode: 0o600 })
  return {
    status: 'started',
    server,
    info,
    passwordFile: file,
    stop: async () => {
      rmSync(infoFile(dataDir), { force: true })
      await server.stop()
    },
  }
}

/** The server of a running `burnwatch start` on this data dir, if any answers. */
export async function findEmbeddedServer(dataDir: string): Promise<EmbeddedServerInfo | null> {
  let info: EmbeddedServerInfo
  try {
    info = JSON.parse(readFileSync(infoFile(dataDir), 'utf8')) as EmbeddedServerInfo
  } catch {
    return null
  }
  try {
    const res = await fetch(`${info.url}/ping`, { signal: AbortSignal.timeout(2000) })
    await res.text()
    return res.ok ? info : null
  } catch {
    return null
  }
}
