// Provisions the real Kafka broker for tests, in this order (DESIGN.md "Tests and the real services"):
//   1. KAFKA_BROKERS (comma-separated host:port) if set;
//   2. Testcontainers (apache/kafka:<version>, KRaft) when a Docker engine answers /_ping quickly;
//   3. a local single-node KRaft broker from the official jars (infra/kafka/local-broker.ts) when java is available;
//   4. otherwise an Error that says what to install or set. Never a silent skip.
import { existsSync, readFileSync, statSync } from 'node:fs'
import { request } from 'node:http'
import { connect } from 'node:net'
import { homedir } from 'node:os'
import { delimiter, join } from 'node:path'
import { defaultKafkaVersion, javaBin, startLocalKafka } from '../../infra/kafka/local-broker.ts'

export interface ProvisionedKafka {
  brokers: string[]
  version: string
  source: 'env' | 'testcontainers' | 'local'
  stop(): Promise<void>
}

const DOCKER_PING_TIMEOUT_MS = 1500

/** Where a Docker engine would be, without asking anything yet. */
function dockerEndpoint(): { socketPath: string } | { host: string; port: number; tls: boolean } | undefined {
  let dockerHost = process.env.DOCKER_HOST?.trim()
  if (!dockerHost) {
    // Testcontainers also reads docker.host from ~/.testcontainers.properties.
    try {
      const props = readFileSync(join(homedir(), '.testcontainers.properties'), 'utf8')
      dockerHost = /^\s*docker\.host\s*=\s*(\S+)/m.exec(props)?.[1]
    } catch {
      /* no file */
    }
  }
  if (dockerHost) {
    if (dockerHost.startsWith('unix://')) return { socketPath: dockerHost.slice('unix://'.length) }
    const m = /^(?:tcp|https?):\/\/([^:/]+)(?::(\d+))?/.exec(dockerHost)
    if (m?.[1]) {
      const tls = process.env.DOCKER_TLS_VERIFY === '1' || dockerHost.startsWith('https')
      return { host: m[1], port: Number(m[2] ?? (tls ? 2376 : 2375)), tls }
    }
    return undefined
  }
  const candidates = [
    '/var/run/docker.sock',
    process.env.XDG_RUNTIME_DIR ? join(process.env.XDG_RUNTIME_DIR, 'docker.sock') : '',
    join(homedir(), '.docker', 'run', 'docker.sock'),
    join(homedir(), '.docker', 'desktop', 'docker.sock'),
  ]
  for (const path of candidates) {
    try {
      if (path && statSync(path).isSocket()) return { socketPath: path }
    } catch {
      /* absent */
    }
  }
  return undefined
}

/** True when a Docker engine answers within ~1.5 s (no socket: false immediately). */
export async function dockerAvailable(): Promise<boolean> {
  if (process.env.BURNWATCH_NO_DOCKER === '1') return false
  const ep = dockerEndpoint()
  if (!ep) return false
  if ('host' in ep && ep.tls) {
    // TLS engine: a TCP connect is the cheap check; Testcontainers does the real handshake.
    return new Promise((resolve) => {
      const sock = connect({ host: ep.host, port: ep.port, timeout: DOCKER_PING_TIMEOUT_MS })
      sock.once('connect', () => (sock.destroy(), resolve(true)))
      sock.once('timeout', () => (sock.destroy(), resolve(false)))
      sock.once('error', () => resolve(false))
    })
  }
  return new Promise((resolve) => {
    const req = request(
      { ...('socketPath' in ep ? { socketPath: ep.socketPath } : { host: ep.host, port: ep.port }), path: '/_ping', method: 'GET', timeout: DOCKER_PING_TIMEOUT_MS },
      (res) => {
        res.resume()
        resolve(res.statusCode === 200)
      },
    )
    req.once('timeout', () => (req.destroy(), resolve(false)))
    req.once('error', () => resolve(false))
    req.end()
  })
}

function onPath(cmd: string): boolean {
  if (cmd.includes('/')) return existsSync(cmd)
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir && existsSync(join(dir, cmd)))
}

async function startTestcontainersKafka(version: string): Promise<ProvisionedKafka> {
  const { GenericContainer, Wait, getContainerRuntimeClient } = await import('testcontainers')
  const { createServer } = await import('node:net')
  const runtime = await getContainerRuntimeClient()
  const host = runtime.info.containerRuntime.host
  // The advertised listener must carry the host-side port, so bind a fixed free port 1:1.
  const port = await new Promise<number>((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, () => {
      const addr = srv.address()
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))))
    })
  })
  const image = process.env.KAFKA_IMAGE ?? `apache/kafka:${version}`
  const container = await new GenericContainer(image)
    .withEnvironment({
      KAFKA_NODE_ID: '1',
      KAFKA_PROCESS_ROLES: 'broker,controller',
      KAFKA_LISTENERS: `PLAINTEXT://0.0.0.0:${port},CONTROLLER://0.0.0.0:9093`,
      KAFKA_ADVERTISED_LISTENERS: `PLAINTEXT://${host}:${port}`,
      KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
      KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
      KAFKA_CONTROLLER_QUORUM_VOTERS: '1@localhost:9093',
      KAFKA_NUM_PARTITIONS: '3',
      KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'true',
      KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_OFFSETS_TOPIC_NUM_PARTITIONS: '10',
      KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
      KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR: '1',
      KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR: '1',
      KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
      KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS: '1000',
    })
    .withExposedPorts({ container: port, host: port })
    .withWaitStrategy(Wait.forLogMessage(/Kafka Server started/))
    .withStartupTimeout(120_000)
    .start()
  return {
    brokers: [`${host}:${port}`],
    version: process.env.KAFKA_IMAGE ? `${version} (image ${image})` : version,
    source: 'testcontainers',
    stop: async () => {
      await container.stop()
    },
  }
}

export async function provisionKafka(): Promise<ProvisionedKafka> {
  const fromEnv = process.env.KAFKA_BROKERS?.trim()
  if (fromEnv) {
    return {
      brokers: fromEnv.split(',').map((b) => b.trim()).filter(Boolean),
      version: 'unknown (external)',
      source: 'env',
      stop: async () => {},
    }
  }
  const version = defaultKafkaVersion()
  if (await dockerAvailable()) return startTestcontainersKafka(version)
  if (onPath(javaBin())) {
    const local = await startLocalKafka()
    return { brokers: local.brokers, version: local.version, source: 'local', stop: () => local.stop() }
  }
  throw new Error(
    'No Kafka broker for the tests. Do one of:\n' +
      '  - set KAFKA_BROKERS=host:port (a running Kafka 4.x/3.9 broker), or\n' +
      '  - start a Docker engine (Testcontainers runs apache/kafka:' + version + '), or\n' +
      '  - install Java 17+ and Maven 3.8+ (e.g. `apt-get install openjdk-17-jre-headless maven`) so the local broker\n' +
      '    can be built from the official jars: `bash infra/kafka/install.sh` (needs Maven Central once).',
  )
}
