/**
 * Reading a request body under the size limit: the declared Content-Length is checked first,
 * the streamed bytes as they arrive, and a gzip/deflate body after decompression too (a small
 * compressed body cannot expand past the limit).
 */
import type { IncomingMessage } from 'node:http'
import { promisify } from 'node:util'
import { gunzip, inflate } from 'node:zlib'
import { HttpError } from './http-error.ts'

const gunzipAsync = promisify(gunzip)
const inflateAsync = promisify(inflate)

export function tooLarge(limit: number): HttpError {
  return new HttpError(413, 'body_too_large', `The request body is larger than the limit of ${limit} bytes. Split the batch into smaller requests.`, { reason: 'too_large', headers: { connection: 'close' } })
}

/** The media type of the request, lower case without parameters; '' when absent. */
export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
}

export function unsupportedMediaType(got: string, accepted: readonly string[], hint = ''): HttpError {
  const what = got ? `Content-Type ${got} is not supported` : 'the request has no Content-Type'
  return new HttpError(415, 'unsupported_media_type', `${what}; send ${accepted.join(' or ')}.${hint ? ` ${hint}` : ''}`, { reason: 'unsupported_media_type' })
}

/** Throws 413 past the limit; the rest of an oversized body is not read (the connection closes). */
export async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'])
  if (Number.isFinite(declared) && declared > limit) throw tooLarge(limit)
  const encoding = (req.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
  if (!['identity', 'gzip', 'x-gzip', 'deflate'].includes(encoding)) {
    throw new HttpError(415, 'unsupported_encoding', `Content-Encoding ${encoding} is not supported; send the body uncompressed, gzip or deflate.`, { reason: 'unsupported_media_type' })
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limit) throw tooLarge(limit)
    chunks.push(chunk)
  }
  const raw = Buffer.concat(chunks, size)
  if (encoding === 'identity') return raw
  try {
    const opts = { maxOutputLength: limit }
    return encoding === 'deflate' ? await inflateAsync(raw, opts) : await gunzipAsync(raw, opts)
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') throw tooLarge(limit)
    throw new HttpError(400, 'malformed_body', `The body could not be decompressed as ${encoding}; check the Content-Encoding header.`, { reason: 'malformed' })
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false })

/** The body as UTF-8 text (a BOM is dropped); 400 when it is not UTF-8. */
export function bodyText(body: Buffer): string {
  try {
    return utf8.decode(body)
  } catch {
    throw new HttpError(400, 'malformed_body', 'The body is not valid UTF-8 text; send JSON encoded as UTF-8.', { reason: 'malformed' })
  }
}
