/** The ingest replaces a producer whose idempotence state the broker refuses, judged by the error's type, never its text. */
import { describe, expect, it } from 'vitest'
import { KafkaJSNonRetriableError, KafkaJSProtocolError } from 'kafkajs'
import { producerBroken } from '../../services/ingest/publish.ts'

const protocol = (type: string, code: number) => new KafkaJSProtocolError({ type, code, retriable: false, message: `broker said ${type}` } as unknown as Error)
/** what kafkajs's retrier rejects with once it gives up (src/retry/index.js): the broker's error as the cause */
const wrapped = (e: Error) => new (KafkaJSNonRetriableError as unknown as new (e: Error, o: { cause: Error }) => Error)(e, { cause: e })

describe('producerBroken', () => {
  it('is true for sequence and producer-id errors, as kafkajs throws them (wrapped after retries)', () => {
    expect(producerBroken(protocol('OUT_OF_ORDER_SEQUENCE_NUMBER', 45))).toBe(true)
    expect(producerBroken(wrapped(protocol('OUT_OF_ORDER_SEQUENCE_NUMBER', 45)))).toBe(true)
    expect(producerBroken(wrapped(protocol('UNKNOWN_PRODUCER_ID', 59)))).toBe(true)
  })

  it('is false for errors a retry with the same producer can get past, and for text that merely mentions one', () => {
    expect(producerBroken(protocol('NOT_LEADER_FOR_PARTITION', 6))).toBe(false)
    expect(producerBroken(new Error('OUT_OF_ORDER_SEQUENCE_NUMBER'))).toBe(false)
    expect(producerBroken(undefined)).toBe(false)
  })
})
