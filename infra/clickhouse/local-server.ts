// A real ClickHouse server without Docker: the chDB package's libchdb.so holds clickhouse-local's
// LocalServer, which serves the ClickHouse HTTP and native TCP protocols when driven through
// chdb_query_cmdline() with `SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP;` and a statement
// that blocks (a SELECT over file() of a FIFO: opening and closing the FIFO for writing ends it
// and the server shuts down cleanly). Node has no FFI that keeps the C stack ClickHouse checks
// (koffi calls on its own stack: "Stack size too large"), so a tiny launcher process does the
// call: launcher.c compiled once with gcc, else launcher.py with python3's ctypes.
// Used by `burnwatch start` (embedded mode), test/support/clickhouse.ts, drills and benchmarks.
// Run directly for a dev server:
//   node infra/clickhouse/local-server.ts [--http-port N] [--data-dir DIR]   -> prints CLICKHOUSE_URL=...
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { request as httpRequest } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { BurnwatchError } from '../../shared/errors.ts'
import { invokedDirectly, runMain, stopOnSignals } from '../launch.ts'

export interface LocalClickHouse {
  /** HTTP endpoint, e.g. http://127.0.0.1:40123 (user `default`, no password: loopback only) */
  url: string
  httpPort: number
  /** native protocol port (clickhouse-client, remote(), Distributed tables) */
  tcpPort: number
  /** pid of the launcher process that runs the server (changes after restart()) */
  pid: number
  /** how the server was launched */
  launcher: 'gcc' | 'python3'
  /** config.xml, the data path (data/), the stop FIFO and (by default) server.log */
  dataDir: string
  logFile: string
  /** Graceful stop (the FIFO, then SIGTERM, then SIGKILL). Idempotent. Data is kept for restart(). */
  stop(): Promise<void>
  /** SIGKILL the server (fault drills). Data is kept for restart(). */
  kill(): Promise<void>
  /** (Stop if running, then) start again on the same ports and data dir; resolves when ready. */
  restart(): Promise<void>
}

export interface AnalystLogin {
  user: string
  password: string
  /** databases the login may read (SELECT ON db.*); nothing else, no writes, no file()/url() */
  databases: string[]
}

export interface LocalClickHouseOptions {
  /** default: a fresh mkdtemp, removed at process exit; an existing data dir is reused */
  dataDir?: string
  /** the ClickHouse data path (databases, tables); default <dataDir>/data. chDB's folder works: same layout */
  path?: string
  httpPort?: number
  tcpPort?: number
  logFile?: string
  /** a read-only login declared in the server's users config (LocalServer has no writable access storage) */
  analyst?: AnalystLogin
  /** clusters for Distributed tables: name → shards, each one server's native (TCP) port on 127.0.0.1 */
  clusters?: Record<string, number[]>
  /** readiness deadline per start; default 30000 */
  startTimeoutMs?: number
}

/** No way to launch a server on this machine (no gcc and no python3, or no libchdb.so). */
export class LauncherUnavailableError extends BurnwatchError {
  constructor(message: string) {
    super(message, { code: 'CH_LAUNCHER_UNAVAILABLE' })
  }
}

const here = dirname(fileURLToPath(import.meta.url))
const STOP_GRACE_MS = 15_000
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

/** libchdb.so of the installed chdb package (its platform package, e.g. @chdb/lib-linux-x64-gnu). */
export function libchdbPath(): string {
  const pkg = `@chdb/lib-${process.platform}-${process.arch}${process.platform === 'linux' ? '-gnu' : ''}`
  const tried: string[] = []
  for (const from of [import.meta.url, safeResolve(createRequire(import.meta.url), 'chdb')]) {
    if (from === null) continue
    const found = safeResolve(createRequire(from), `${pkg}/package.json`)
    if (found === null) continue
    const lib = join(dirname(found), 'libchdb.so')
    if (existsSync(lib)) return lib
    tried.push(lib)
  }
  throw new LauncherUnavailableError(`no libchdb.so from ${pkg} (${tried.join(', ') || 'package not installed'}); run npm install on a platform chdb supports`)
}

function safeResolve(req: NodeRequire, id: string): string | null {
  try {
    return req.resolve(id)
  } catch {
    return null
  }
}

function run(cmd: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  return new Promise((r) => {
    execFile(cmd, args, { timeout: 60_000, maxBuffer: 1 << 20 }, (err, out, errOut) => r({ ok: err === null, output: `${out}${errOut}`.trim() || (err?.message ?? '') }))
  })
}

let launcherPromise: Promise<{ command: string; prefix: string[]; kind: 'gcc' | 'python3' }> | null = null

/**
 * How to launch: `BURNWATCH_CLICKHOUSE_LAUNCHER=gcc|python3|none` forces one (or none); else launcher.c compiled
 * with gcc (once, cached under node_modules/.cache/burnwatch), else python3 with ctypes.
 */
export function resolveLauncher(): Promise<{ command: string; prefix: string[]; kind: 'gcc' | 'python3' }> {
  launcherPromise ??= (async () => {
    const forced = process.env.BURNWATCH_CLICKHOUSE_LAUNCHER
    // `none`: behave as a machine without gcc and python3 (tests of the fallback)
    if (forced === 'none') throw new LauncherUnavailableError('cannot launch a local ClickHouse server: BURNWATCH_CLICKHOUSE_LAUNCHER=none')
    const lib = libchdbPath()
    const problems: string[] = []
    if (forced === undefined || forced === 'gcc') {
      const source = join(here, 'launcher.c')
      const hash = createHash('sha256').update(readFileSync(source)).digest('hex').slice(0, 12)
      const cacheDir = process.env.BURNWATCH_CACHE_DIR ?? join(here, '..', '..', 'node_modules', '.cache', 'burnwatch')
      const binary = join(cacheDir, `chdb-launcher-${hash}`)
      if (existsSync(binary)) return { command: binary, prefix: [lib], kind: 'gcc' as const }
      mkdirSync(cacheDir, { recursive: true })
      const partial = `${binary}.${process.pid}.${randomBytes(3).toString('hex')}`
      const cc = await run(process.env.CC ?? 'gcc', ['-O2', '-o', partial, source, '-ldl'])
      if (cc.ok) {
        renameSync(partial, binary)
        return { command: binary, prefix: [lib], kind: 'gcc' as const }
      }
      rmSync(partial, { force: true })
      problems.push(`gcc could not build infra/clickhouse/launcher.c: ${cc.output.split('\n')[0]}`)
    }
    if (forced === undefined || forced === 'python3') {
      const py = await run('python3', ['-c', 'import ctypes'])
      if (py.ok) return { command: 'python3', prefix: [join(here, 'launcher.py'), lib], kind: 'python3' as const }
      problems.push(`python3 with ctypes is not available: ${py.output.split('\n')[0]}`)
    }
    throw new LauncherUnavailableError(`cannot launch a local ClickHouse server: ${problems.join('; ') || `unknown BURNWATCH_CLICKHOUSE_LAUNCHER '${forced}' (gcc or python3)`}. Install gcc or python3, or set CLICKHOUSE_URL to a ClickHouse server`)
  })()
  launcherPromise.catch(() => (launcherPromise = null))
  return launcherPromise
}

/** Free loopback ports, all distinct. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((ok, fail) => {
      const srv = createServer()
      srv.once('error', fail)
      srv.listen(0, '127.0.0.1', () => ok(srv))
    })),
  )
  const ports = servers.map((s) => (s.address() as { port: number }).port)
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  return ports
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')
const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/

/** The server's config.xml: loopback only, users (default + the optional read-only analyst), clusters. */
export function serverConfig(configPath: string, opts: Pick<LocalClickHouseOptions, 'analyst' | 'clusters'>): string {
  const loopback = '<networks><ip>127.0.0.1</ip><ip>::1</ip></networks>'
  const a = opts.analyst
  if (a) {
    if (!IDENT.test(a.user)) throw new Error(`analyst user '${a.user}' must be an identifier`)
    for (const db of a.databases) if (!IDENT.test(db)) throw new Error(`analyst database '${db}' must be an identifier`)
  }
  const analyst = a
    ? `<${a.user}><password_sha256_hex>${createHash('sha256').update(a.password).digest('hex')}</password_sha256_hex>${loopback}` +
      `<profile>readonly</profile><quota>default</quota>${a.databases[0] ? `<default_database>${a.databases[0]}</default_database>` : ''}` +
      `<grants>${a.databases.map((db) => `<query>GRANT SELECT ON ${db}.*</query>`).join('')}</grants></${a.user}>`
    : ''
  const clusters = Object.entries(opts.clusters ?? {})
    .map(([name, ports]) => `<${name}>${ports.map((p) => `<shard><replica><host>127.0.0.1</host><port>${p}</port></replica></shard>`).join('')}</${name}>`)
    .join('')
  return [
    '<!-- written by infra/clickhouse/local-server.ts -->',
    '<clickhouse>',
    `  <user_directories><users_xml><path>${xml(configPath)}</path></users_xml></user_directories>`,
    `  <users><default><password></password>${loopback}<profile>default</profile><quota>default</quota></default>${analyst}</users>`,
    // readonly=2: read-only queries, settings still changeable (which @clickhouse/client and Grafana need)
    '  <profiles><default/><readonly><readonly>2</readonly></readonly></profiles>',
    '  <quotas><default/></quotas>',
    clusters ? `  <remote_servers>${clusters}</remote_servers>` : '',
    '</clickhouse>',
    '',
  ].join('\n')
}

const live = new Set<ChildProcess>()
const tempDirs = new Set<string>()
let exitHookInstalled = false
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL')
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  })
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return '(no server log)'
  }
}

/** One HTTP request on its own connection: no idle keep-alive socket for stop() to wait for. */
function request(url: string, body?: string): Promise<{ status: number; text: string }> {
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { method: body === undefined ? 'GET' : 'POST', agent: false, timeout: 5000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (text += c))
      res.on('end', () => ok({ status: res.statusCode ?? 0, text }))
      res.on('error', fail)
    })
    req.on('timeout', () => req.destroy(new Error('timeout')))
    req.on('error', fail)
    req.end(body)
  })
}

async function ping(url: string): Promise<boolean> {
  try {
    return (await request(`${url}/ping`)).status === 200
  } catch {
    return false
  }
}

export async function startLocalClickHouse(opts: LocalClickHouseOptions = {}): Promise<LocalClickHouse> {
  const launcher = await resolveLauncher()
  const ownDir = opts.dataDir === undefined
  const dataDir = resolve(opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'burnwatch-clickhouse-'))))
  mkdirSync(dataDir, { recursive: true })
  installExitHook()
  if (ownDir) tempDirs.add(dataDir)
  const logFile = resolve(opts.logFile ?? join(dataDir, 'server.log'))
  const startTimeoutMs = opts.startTimeoutMs ?? 30_000
  const [p1, p2] = await freePorts(2)
  const httpPort = opts.httpPort ?? p1!
  const tcpPort = opts.tcpPort ?? p2!
  const configFile = join(dataDir, 'config.xml')
  const fifo = join(dataDir, 'stop.fifo')
  await writeFile(configFile, serverConfig(configFile, opts), { mode: 0o600 })
  if (!existsSync(fifo)) {
    const made = await run('mkfifo', ['-m', '600', fifo])
    if (!made.ok) throw new LauncherUnavailableError(`mkfifo ${fifo} failed: ${made.output}`)
  }
  const url = `http://127.0.0.1:${httpPort}`
  const args = [
    ...launcher.prefix,
    `--config-file=${configFile}`,
    `--path=${resolve(opts.path ?? join(dataDir, 'data'))}/`,
    `--http_port=${httpPort}`,
    `--tcp_port=${tcpPort}`,
    '--listen_host=127.0.0.1',
    // a server, not a one-shot query: keep log output in the log file, never on a terminal
    '--logger.console=0',
    `--query=SYSTEM START LISTEN HTTP; SYSTEM START LISTEN TCP; SELECT count() FROM file('${fifo.replace(/'/g, "\\'")}', 'LineAsString', 'line String')`,
  ]

  let child: ChildProcess | undefined
  let exited: Promise<void> = Promise.resolve()

  const launch = async (): Promise<void> => {
    const fd = openSync(logFile, 'a')
    let proc: ChildProcess
    try {
      proc = spawn(launcher.command, args, { stdio: ['ignore', fd, fd], cwd: dataDir })
    } finally {
      closeSync(fd)
    }
    let exitInfo: string | undefined
    exited = new Promise<void>((r) => {
      proc.once('exit', (code, signal) => {
        exitInfo ??= `code=${code} signal=${signal}`
        live.delete(proc)
        r()
      })
      proc.once('error', (e) => {
        exitInfo ??= `cannot run ${launcher.command}: ${e.message}`
        live.delete(proc)
        r()
      })
    })
    child = proc
    live.add(proc)
    const deadline = Date.now() + startTimeoutMs
    for (;;) {
      if (exitInfo !== undefined) throw new Error(`ClickHouse server exited during startup (${exitInfo}); log ${logFile}:\n${tail(logFile)}`)
      if (await ping(url)) {
        // the analyst login's databases exist from the start (its default database must)
        for (const db of opts.analyst?.databases ?? []) {
          const res = await request(url, `CREATE DATABASE IF NOT EXISTS ${db}`)
          if (res.status !== 200) throw new Error(`CREATE DATABASE ${db} failed: ${res.text}`)
        }
        return
      }
      if (Date.now() > deadline) {
        await killNow()
        throw new Error(`ClickHouse server not ready at ${url} after ${startTimeoutMs} ms; log ${logFile}:\n${tail(logFile)}`)
      }
      await sleep(50)
    }
  }

  const isRunning = () => child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null

  const killNow = async (): Promise<void> => {
    if (isRunning()) child!.kill('SIGKILL')
    await exited
  }

  const stopNow = async (): Promise<void> => {
    if (!isRunning()) return exited
    // 1. end the blocking SELECT: open the FIFO for writing and close it (non-blocking: no reader yet → ENXIO)
    try {
      closeSync(openSync(fifo, fsConstants.O_WRONLY | fsConstants.O_NONBLOCK))
    } catch {
      child!.kill('SIGTERM')
    }
    // 2. then a deadline, then SIGKILL
    const timer = setTimeout(() => child?.kill('SIGKILL'), STOP_GRACE_MS)
    try {
      await exited
    } finally {
      clearTimeout(timer)
    }
  }

  let op: Promise<void> = Promise.resolve()
  const serialize = (fn: () => Promise<void>): Promise<void> => {
    const next = op.then(fn, fn)
    op = next.catch(() => {})
    return next
  }

  await launch()
  const handle: LocalClickHouse = {
    url,
    httpPort,
    tcpPort,
    pid: child!.pid!,
    launcher: launcher.kind,
    dataDir,
    logFile,
    stop: () => serialize(stopNow),
    kill: () => serialize(killNow),
    restart: () => serialize(async () => {
      await stopNow()
      await launch()
      handle.pid = child!.pid!
    }),
  }
  return handle
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  const opt = (name: string): string | undefined => {
    const i = args.indexOf(name)
    return i >= 0 ? args[i + 1] : undefined
  }
  if (args.includes('--help') || args.includes('-h')) {
    console.log('usage: node infra/clickhouse/local-server.ts [--http-port N] [--tcp-port N] [--data-dir DIR]')
    return
  }
  const t0 = Date.now()
  const ch = await startLocalClickHouse({
    ...(opt('--http-port') ? { httpPort: Number(opt('--http-port')) } : {}),
    ...(opt('--tcp-port') ? { tcpPort: Number(opt('--tcp-port')) } : {}),
    ...(opt('--data-dir') ? { dataDir: opt('--data-dir') } : {}),
  })
  console.log(`CLICKHOUSE_URL=${ch.url}`)
  console.error(`ClickHouse server from libchdb.so (${ch.launcher} launcher, pid ${ch.pid}) ready in ${Date.now() - t0} ms; native port ${ch.tcpPort}; data ${ch.dataDir}; log ${ch.logFile}. Ctrl-C to stop.`)
  stopOnSignals(() => ch.stop(), 'ClickHouse')
}

if (invokedDirectly(import.meta.url)) runMain(main)
