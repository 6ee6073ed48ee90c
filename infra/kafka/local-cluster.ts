// A three-broker Apache Kafka cluster (KRaft) on loopback from the same jars as local-broker.ts:
// every node is broker + controller (a three-voter quorum), replication factor 3 and
// min.insync.replicas 2 by default, so a topic created with replicationFactor -1 (the bus does)
// gets three replicas and acks=all survives one broker down. For drills: kill or restart any node.
//   node infra/kafka/local-cluster.ts [--brokers 3]   -> prints KAFKA_BROKERS=127.0.0.1:P1,...
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterId, freePorts, startLocalKafka, type LocalKafka } from './local-broker.ts'
import { invokedDirectly, stopOnSignals } from '../launch.ts'

export interface LocalKafkaCluster {
  /** bootstrap servers of every node */
  brokers: string[]
  version: string
  /** the nodes in node-id order (node.id = index + 1) */
  nodes: LocalKafka[]
  /** stop every node (graceful). Idempotent. */
  stop(): Promise<void>
}

export async function startLocalKafkaCluster(opts: { brokers?: number; replicationFactor?: number; minInsyncReplicas?: number; dataDir?: string } = {}): Promise<LocalKafkaCluster> {
  const n = opts.brokers ?? 3
  const replicationFactor = opts.replicationFactor ?? Math.min(3, n)
  const minInsyncReplicas = opts.minInsyncReplicas ?? Math.min(2, replicationFactor)
  const ports = await freePorts(2 * n)
  const voters = Array.from({ length: n }, (_, i) => `${i + 1}@127.0.0.1:${ports[n + i]}`).join(',')
  const id = clusterId()
  const base = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'burnwatch-kafka-cluster-')))
  // all at once: no node is ready before a quorum of controllers runs
  const started = await Promise.allSettled(
    Array.from({ length: n }, (_, i) =>
      startLocalKafka({
        port: ports[i]!,
        dataDir: join(base, `node-${i + 1}`),
        cluster: { nodeId: i + 1, controllerPort: ports[n + i]!, voters, clusterId: id, replicationFactor, minInsyncReplicas },
      }),
    ),
  )
  const nodes = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  if (failed) {
    await Promise.allSettled(nodes.map((k) => k.stop()))
    throw failed.reason
  }
  return {
    brokers: nodes.flatMap((k) => k.brokers),
    version: nodes[0]!.version,
    nodes,
    stop: async () => {
      await Promise.allSettled(nodes.map((k) => k.stop()))
    },
  }
}

if (invokedDirectly(import.meta.url)) {
  const i = process.argv.indexOf('--brokers')
  const t0 = Date.now()
  startLocalKafkaCluster({ brokers: i > 0 ? Number(process.argv[i + 1]) : 3 }).then((c) => {
    console.log(`KAFKA_BROKERS=${c.brokers.join(',')}`)
    console.error(`Apache Kafka ${c.version}: ${c.nodes.length} KRaft nodes ready in ${Date.now() - t0} ms (pids ${c.nodes.map((k) => k.pid).join(', ')}). Ctrl-C to stop.`)
    stopOnSignals(() => c.stop(), 'Kafka')
  }, (e: unknown) => {
    console.error(e instanceof Error ? e.message : e)
    process.exit(1)
  })
}
