import { describe, expect, it } from 'vitest'
import { Partitioners } from 'kafkajs'
import { createFastPartitioner, partitionFor } from '../../shared/bus/partitioner.ts'
import { mulberry32 } from '../../services/demo/traffic.ts'

describe('fast partitioner', () => {
  it("gives kafkajs's DefaultPartitioner's partition for string, Buffer, unicode and explicit keys", () => {
    const kafkajs = Partitioners.DefaultPartitioner()
    const fast = createFastPartitioner()()
    const random = mulberry32(3)
    const alphabet = ['a', 'Z', '0', '"', '[', ',', ' ', 'é', '日', '✓', '\u0000', '😀']
    for (const partitions of [1, 3, 7, 64]) {
      const partitionMetadata = Array.from({ length: partitions }, (_, i) => ({ partitionId: i, leader: 1, replicas: [1], isr: [1], partitionErrorCode: 0 }))
      for (let i = 0; i < 2000; i++) {
        const len = Math.floor(random() * 300)
        let key = ''
        for (let k = 0; k < len; k++) key += alphabet[Math.floor(random() * (random() < 0.9 ? 7 : alphabet.length))]
        const message = random() < 0.3 ? { key: Buffer.from(key), value: 'v' } : { key, value: 'v' }
        const expected = kafkajs({ topic: 't', partitionMetadata, message })
        expect(fast({ topic: 't', partitionMetadata, message }), JSON.stringify(key)).toBe(expected)
        if (typeof message.key === 'string') expect(partitionFor(message.key, partitions, 0)).toBe(expected)
      }
      expect(fast({ topic: 't', partitionMetadata, message: { key: 'x', partition: partitions - 1 } })).toBe(partitions - 1)
      // no key: round robin over the partitions
      const seen = new Set(Array.from({ length: partitions * 2 }, () => fast({ topic: 'rr', partitionMetadata, message: { key: null } })))
      expect(seen.size).toBe(partitions)
    }
  })
})
