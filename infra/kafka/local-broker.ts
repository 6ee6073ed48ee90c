// A real single-node Apache Kafka (KRaft) broker without Docker: the official broker jars
// (org.apache.kafka:kafka_2.13 + runtime deps, resolved from Maven Central by install.sh) run
// as a child JVM exactly as the distribution's scripts would:
//   kafka-storage.sh format  ==  java -cp <jars> kafka.tools.StorageTool format -t <id> -c server.properties
//   kafka-server-start.sh    ==  java -cp <jars> kafka.Kafka server.properties
// Used by test/support/kafka.ts (tests), benchmarks and drills. Run directly for a dev broker:
//   node infra/kafka/local-broker.ts [--port 9092] [--data-dir DIR]   -> prints KAFKA_BROKERS=127.0.0.1:PORT
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Kafka, logLevel } from 'kafkajs'
import { invokedDirectly, runMain, stopOnSignals } from '../launch.ts'

export interface LocalKafka {
  /** Bootstrap servers, e.g. ['127.0.0.1:40123']. */
  brokers: string[]
  /** The org.apache.kafka:kafka_2.13 artifact version running. */
  version: string
  /** Pid of the broker JVM (changes after restart()). */
  pid: number
  /** Directory holding server.properties, the KRaft log dirs and (by default) broker.log. */
  dataDir: string
  /** The broker's stdout/stderr (Log4j2 console output). */
  logFile: string
  /** Graceful stop: SIGTERM, then SIGKILL after a deadline. Idempotent. Data is kept for restart(). */
  stop(): Promise<void>
  /** SIGKILL the broker (fault drills). Data is kept for restart(). */
  kill(): Promise<void>
  /** (Stop if running, then) start again on the same ports and data dir; resolves when ready. */
  restart(): Promise<void>
}

export interface LocalKafkaOptions {
  /** Client (PLAINTEXT) port on 127.0.0.1; default: a free port. */
  port?: number
  /** Where config, KRaft metadata and logs live; default: a fresh mkdtemp, removed at process exit. An already formatted dir is reused. */
  dataDir?: string
  /** Broker output; default: <dataDir>/broker.log. */
  logFile?: string
  /** Readiness deadline per start; default 60000 (env BURNWATCH_KAFKA_START_TIMEOUT_MS). */
  startTimeoutMs?: number
  /** One node of a cluster (infra/kafka/local-cluster.ts): its id, controller port, the voters, the shared cluster id, replication. */
  cluster?: { nodeId: number; controllerPort: number; voters: string; clusterId: string; replicationFactor: number; minInsyncReplicas: number }
}

const here = dirname(fileURLToPath(import.meta.url))
const installScript = join(here, 'install.sh')
const STOP_GRACE_MS = 15_000

/** Runs install.sh (a few ms when cached; resolves jars with Maven otherwise). Returns classpath + version. */
export async function installKafkaJars(): Promise<{ classpath: string; version: string }> {
  const stdout = await new Promise<string>((resolvePromise, reject) => {
    execFile('bash', [installScript], { maxBuffer: 1 << 20, timeout: 15 * 60_000 }, (err, out, errOut) => {
      if (err) reject(new Error(`infra/kafka/install.sh failed: ${err.message}\n${errOut.trim()}`))
      else resolvePromise(out)
    })
  })
  const cpFile = stdout.trim().split('\n').pop() ?? ''
  const match = /^classpath-(.+)\.txt$/.exec(basename(cpFile))
  if (!match?.[1] || !existsSync(cpFile)) throw new Error(`infra/kafka/install.sh printed no classpath file (got ${JSON.stringify(stdout)})`)
  return { classpath: readFileSync(cpFile, 'utf8').trim(), version: match[1] }
}

/** The Kafka version install.sh resolves: $KAFKA_VERSION, else <kafka.version> in infra/kafka/pom.xml. */
export function defaultKafkaVersion(): string {
  const fromEnv = process.env.KAFKA_VERSION?.trim()
  if (fromEnv) return fromEnv
  const m = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(join(here, 'pom.xml'), 'utf8'))
  if (!m?.[1]) throw new Error('infra/kafka/pom.xml has no <kafka.version>')
  return m[1].trim()
}

/** The java executable: $JAVA_HOME/bin/java if present, else `java` on PATH. */
export function javaBin(): string {
  const home = process.env.JAVA_HOME
  return home && existsSync(join(home, 'bin', 'java')) ? join(home, 'bin', 'java') : 'java'
}

function runJava(args: string[], logFile: string): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    execFile(javaBin(), args, { maxBuffer: 4 << 20, timeout: 120_000 }, (err, out, errOut) => {
      if (err) reject(new Error(`${args.slice(-6).join(' ')} failed: ${err.message}\n${(out + errOut).trim().slice(-4000)}\n(broker log: ${logFile})`))
      else resolvePromise()
    })
  })
}

/** Free loopback ports, all distinct (the listening sockets are held until every port is picked). */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolvePromise, reject) => {
      const srv = createServer()
      srv.once('error', reject)
      srv.listen(0, '127.0.0.1', () => resolvePromise(srv))
    })),
  )
  const ports = servers.map((s) => {
    const addr = s.address()
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address')
    return addr.port
  })
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))))
  return ports
}

/** A KRaft cluster id: 16 random bytes, base64url (Kafka avoids ids starting with '-', which look like CLI flags). */
export function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

function tail(file: string, lines = 40): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')
  } catch {
    return '(no broker log)'
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

// Children must not outlive this process: kill them on exit (sync), and a detached watchdog
// SIGKILLs the JVM if this process dies without running exit handlers (e.g. SIGKILL).
const live = new Set<{ child: ChildProcess; tempDir: string | undefined }>()
const tempDirs = new Set<string>()
let exitHookInstalled = false
function installExitHook(): void {
  if (exitHookInstalled) return
  exitHookInstalled = true
  process.on('exit', () => {
    for (const { child } of live) {
      try {
        child.kill('SIGKILL')
      } catch {
        /* already gone */
      }
    }
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true, maxRetries: 3 })
  })
}

function spawnWatchdog(childPid: number, tempDir: string | undefined): void {
  const script = 'while kill -0 "$0" 2>/dev/null && kill -0 "$1" 2>/dev/null; do sleep 1; done; ' +
    'if ! kill -0 "$0" 2>/dev/null; then kill -9 "$1" 2>/dev/null; sleep 1; if [ -n "$2" ]; then rm -rf "$2"; fi; fi'
  const dog = spawn('sh', ['-c', script, String(process.pid), String(childPid), tempDir ?? ''], { stdio: 'ignore', detached: true })
  dog.on('error', () => {})
  dog.unref()
}

export async function startLocalKafka(opts: LocalKafkaOptions = {}): Promise<LocalKafka> {
  const { classpath, version } = await installKafkaJars()
  const ownDir = opts.dataDir === undefined
  const dataDir = resolve(opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'burnwatch-kafka-'))))
  mkdirSync(dataDir, { recursive: true })
  if (ownDir) tempDirs.add(dataDir)
  const logFile = resolve(opts.logFile ?? join(dataDir, 'broker.log'))
  const startTimeoutMs = opts.startTimeoutMs ?? (Number(process.env.BURNWATCH_KAFKA_START_TIMEOUT_MS) || 60_000)
  const picked = await freePorts(2)
  const port = opts.port ?? picked[0]!
  const controllerPort = opts.cluster?.controllerPort ?? picked.find((p) => p !== port) ?? picked[1]!
  const nodeId = opts.cluster?.nodeId ?? 1
  const rf = opts.cluster?.replicationFactor ?? 1
  const minIsr = opts.cluster?.minInsyncReplicas ?? 1
  const logDir = join(dataDir, 'kraft')
  const propsFile = join(dataDir, 'server.properties')
  const log4jFile = join(dataDir, 'log4j2.properties')
  installExitHook()

  await writeFile(propsFile, [
    '# Written by infra/kafka/local-broker.ts: one node, broker + controller (KRaft), loopback only.',
    'process.roles=broker,controller',
    `node.id=${nodeId}`,
    `controller.quorum.voters=${opts.cluster?.voters ?? `1@127.0.0.1:${controllerPort}`}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    `log.dirs=${logDir}`,
    'num.partitions=3',
    `default.replication.factor=${rf}`,
    `min.insync.replicas=${minIsr}`,
    'auto.create.topics.enable=true',
    'delete.topic.enable=true',
    `offsets.topic.replication.factor=${rf}`,
    // Fewer internal partitions: coordinators load faster on a 2-core test machine.
    'offsets.topic.num.partitions=10',
    `transaction.state.log.replication.factor=${rf}`,
    `transaction.state.log.min.isr=${minIsr}`,
    'transaction.state.log.num.partitions=5',
    `share.coordinator.state.topic.replication.factor=${rf}`,
    `share.coordinator.state.topic.min.isr=${minIsr}`,
    'group.initial.rebalance.delay.ms=0',
    // Let short consumer session timeouts (tests) through; the broker default minimum is 6000.
    'group.min.session.timeout.ms=1000',
    // After kill() the old registration blocks a restart (DUPLICATE_BROKER_REGISTRATION) until the
    // broker session expires: 4 s instead of the default 9 s keeps kill+restart drills short.
    'broker.heartbeat.interval.ms=1000',
    'broker.session.timeout.ms=4000',
    'num.network.threads=2',
    'num.io.threads=4',
    'num.recovery.threads.per.data.dir=1',
    '',
  ].join('\n'))
  await writeFile(log4jFile, [
    'status = warn',
    'appender.out.type = Console',
    'appender.out.name = STDOUT',
    'appender.out.layout.type = PatternLayout',
    'appender.out.layout.pattern = [%d] %p %m (%c)%n',
    'rootLogger.level = INFO',
    'rootLogger.appenderRef.out.ref = STDOUT',
    'logger.request.name = kafka.request.logger',
    'logger.request.level = WARN',
    'logger.state.name = state.change.logger',
    'logger.state.level = WARN',
    '',
  ].join('\n'))

  const heap = (process.env.KAFKA_HEAP_OPTS ?? '-Xms256m -Xmx512m').split(/\s+/).filter(Boolean)
  const perf = (process.env.KAFKA_JVM_PERFORMANCE_OPTS ?? '-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true')
    .split(/\s+/).filter(Boolean)
  const jvm = [...heap, ...perf, `-Dlog4j2.configurationFile=${log4jFile}`, '-cp', classpath]

  if (!existsSync(join(logDir, 'meta.properties'))) {
    await runJava([...jvm, 'kafka.tools.StorageTool', 'format', '-t', opts.cluster?.clusterId ?? clusterId(), '-c', propsFile], logFile)
  }

  let child: ChildProcess | undefined
  let entry: { child: ChildProcess; tempDir: string | undefined } | undefined
  let exited: Promise<void> = Promise.resolve()
  const brokers = [`127.0.0.1:${port}`]

  const launch = async (): Promise<void> => {
    const fd = openSync(logFile, 'a')
    let proc: ChildProcess
    try {
      proc = spawn(javaBin(), [...jvm, 'kafka.Kafka', propsFile], { stdio: ['ignore', fd, fd], cwd: dataDir })
    } finally {
      closeSync(fd)
    }
    let exitInfo: string | undefined
    let spawnFailed: ((e: Error) => void) | undefined
    const spawnError = new Promise<never>((_, reject) => (spawnFailed = reject))
    spawnError.catch(() => {})
    exited = new Promise<void>((r) => {
      const done = (info: string) => {
        exitInfo ??= info
        if (entry?.child === proc) live.delete(entry)
        r()
      }
      proc.once('exit', (code, signal) => done(`code=${code} signal=${signal}`))
      proc.once('error', (e) => {
        spawnFailed?.(new Error(`cannot run ${javaBin()}: ${e.message}`))
        done(`spawn error: ${e.message}`)
      })
    })
    child = proc
    entry = { child: proc, tempDir: ownDir ? dataDir : undefined }
    live.add(entry)
    if (proc.pid !== undefined) spawnWatchdog(proc.pid, ownDir ? dataDir : undefined)

    const kafka = new Kafka({ clientId: 'local-broker-probe', brokers, logLevel: logLevel.NOTHING, connectionTimeout: 1000, requestTimeout: 2000, retry: { retries: 0 } })
    const deadline = Date.now() + startTimeoutMs
    for (;;) {
      if (exitInfo !== undefined) throw new Error(`Kafka broker exited during startup (${exitInfo}); log ${logFile}:\n${tail(logFile)}`)
      const admin = kafka.admin()
      try {
        await Promise.race([spawnError, admin.connect()])
        const cluster = await admin.describeCluster()
        if (cluster.brokers.some((b) => b.nodeId === nodeId) && cluster.controller !== null) return
      } catch (e) {
        if (e instanceof Error && e.message.startsWith('cannot run')) throw e
      } finally {
        await admin.disconnect().catch(() => {})
      }
      if (Date.now() > deadline) {
        await killNow()
        throw new Error(`Kafka broker not ready on ${brokers[0]} after ${startTimeoutMs} ms; log ${logFile}:\n${tail(logFile)}`)
      }
      await sleep(200)
    }
  }

  const isRunning = () => child !== undefined && child.pid !== undefined && child.exitCode === null && child.signalCode === null

  const killNow = async (): Promise<void> => {
    if (isRunning()) child!.kill('SIGKILL')
    await exited
  }

  const stopNow = async (): Promise<void> => {
    if (!isRunning()) return exited
    child!.kill('SIGTERM')
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
  const handle: LocalKafka = {
    brokers,
    version,
    pid: child!.pid!,
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
    console.log('usage: node infra/kafka/local-broker.ts [--port N] [--data-dir DIR] [--log-file FILE]')
    return
  }
  const port = opt('--port')
  const t0 = Date.now()
  const kafka = await startLocalKafka({
    ...(port ? { port: Number(port) } : {}),
    ...(opt('--data-dir') ? { dataDir: opt('--data-dir') } : {}),
    ...(opt('--log-file') ? { logFile: opt('--log-file') } : {}),
  })
  console.log(`KAFKA_BROKERS=${kafka.brokers.join(',')}`)
  console.error(`Apache Kafka ${kafka.version} (KRaft, pid ${kafka.pid}) ready in ${Date.now() - t0} ms; data ${kafka.dataDir}; log ${kafka.logFile}. Ctrl-C to stop.`)
  stopOnSignals(() => kafka.stop(), 'Kafka')
}

if (invokedDirectly(import.meta.url)) runMain(main)
