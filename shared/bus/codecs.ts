/**
 * Every compression codec Kafka has, for kafkajs (which ships gzip only and takes the others as
 * plug-ins): records compressed by Java, librdkafka (kcat, confluent-kafka) or Go producers with
 * snappy, lz4 or zstd are consumed like any other. Maintained codecs from the npm registry:
 * `snappy` and `lz4-napi` (napi-rs, prebuilt per platform), zstd from Node's own zlib (Node ≥ 22.15).
 *
 * Snappy comes two ways on Kafka: raw blocks (librdkafka, kafkajs-snappy) and the xerial framing
 * of the Java client (a 16-byte header, then length-prefixed blocks); both are read, raw is written.
 * LZ4 is the LZ4 frame format (Kafka's v2 record batches).
 */
import { promisify } from 'node:util'
import zlib from 'node:zlib'
import kafkajs from 'kafkajs'
import snappy from 'snappy'
import { compressFrame, decompressFrame } from 'lz4-napi'

const zstdCompress = promisify(zlib.zstdCompress)
const zstdDecompress = promisify(zlib.zstdDecompress)

const XERIAL_MAGIC = Buffer.from([0x82, 0x53, 0x4e, 0x41, 0x50, 0x50, 0x59, 0x00])

/** Snappy as Kafka carries it: xerial-framed (Java) or a raw block. */
export async function snappyDecompress(buf: Buffer): Promise<Buffer> {
  if (buf.length >= 16 && buf.subarray(0, 8).equals(XERIAL_MAGIC)) {
    const parts: Buffer[] = []
    let at = 16
    while (at + 4 <= buf.length) {
      const len = buf.readUInt32BE(at)
      at += 4
      if (at + len > buf.length) throw new RangeError(`xerial snappy block of ${len} bytes runs past the end of the record batch`)
      parts.push((await snappy.uncompress(buf.subarray(at, at + len))) as Buffer)
      at += len
    }
    return Buffer.concat(parts)
  }
  return (await snappy.uncompress(buf)) as Buffer
}

interface Encoder {
  buffer: Buffer
}

let registered = false

/** Registers snappy, lz4 and zstd with kafkajs (idempotent; process-wide, as kafkajs's codec table is). */
export function registerKafkaCodecs(): void {
  if (registered) return
  registered = true
  // kafkajs is CommonJS: its codec table through the default export (named imports fail under plain Node ESM)
  const { CompressionCodecs, CompressionTypes } = kafkajs
  const codecs = CompressionCodecs as Record<number, () => unknown>
  codecs[CompressionTypes.Snappy] = () => ({
    compress: async (e: Encoder) => snappy.compress(e.buffer),
    decompress: snappyDecompress,
  })
  codecs[CompressionTypes.LZ4] = () => ({
    compress: async (e: Encoder) => compressFrame(e.buffer),
    decompress: async (buf: Buffer) => decompressFrame(buf),
  })
  codecs[CompressionTypes.ZSTD] = () => ({
    compress: async (e: Encoder) => zstdCompress(e.buffer),
    decompress: async (buf: Buffer) => zstdDecompress(buf),
  })
}
