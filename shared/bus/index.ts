import type { Logger } from '../logger.ts'
import type { Bus } from './port.ts'
import { createInProcessBus } from './in-process.ts'
import { createKafkaBus } from './kafka.ts'

export * from './port.ts'
export { createInProcessBus, createKafkaBus }

/** Kafka when brokers are configured, otherwise the in-process bus. */
export function createBus(o: { brokers: string[] | null; clientId: string; logger: Logger }): Bus {
  return o.brokers ? createKafkaBus({ brokers: o.brokers, clientId: o.clientId, logger: o.logger }) : createInProcessBus({ logger: o.logger })
}
