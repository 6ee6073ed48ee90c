/**
 * A loopback fake of the Slack Web API methods the notifier uses, for the real WebClient
 * (`slackApiUrl: fake.url`): auth.test, chat.postMessage, chat.update, conversations.history,
 * conversations.replies, conversations.list, and the external file upload flow
 * (files.getUploadURLExternal → the bytes to the returned `upload_url`, served here too →
 * files.completeUploadExternal, which shares the file into a channel or thread; see `uploads`).
 * It parses form and JSON bodies like Slack, checks
 * the bearer token, records every call, keeps the messages per channel (with metadata), and
 * answers programmable faults: 429 with Retry-After, HTTP 500 (optionally after doing the
 * work, the ambiguous case), or `{ ok: false, error }` for a channel.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface FakeCall {
  method: string
  params: Record<string, unknown>
  /** HTTP status answered */
  status: number
  /** Slack `error` when ok:false */
  error: string | null
  at: number
}

export interface FakeMessage {
  channel: string
  ts: string
  thread_ts: string | null
  text: string
  blocks: unknown[]
  metadata: { event_type: string; event_payload: Record<string, unknown> } | null
  edits: number
}

export interface FakeUpload {
  file_id: string
  filename: string
  /** the length announced to files.getUploadURLExternal */
  length: number
  alt_text: string | null
  /** the bytes received at the upload URL; null until then */
  data: Buffer | null
  title: string | null
  /** set by files.completeUploadExternal: where the file was shared */
  channel: string | null
  thread_ts: string | null
  completed: boolean
}

export type Fault =
  | { kind: 'rate_limited'; retryAfterSec?: number }
  | { kind: 'http_500'; /** do the work, then answer 500 (Slack posted, the client cannot know) */ afterWork?: boolean }
  | { kind: 'error'; error: string }

export interface FakeSlack {
  /** base URL for `slackApiUrl`, ending in `/api/` */
  readonly url: string
  readonly token: string
  readonly calls: FakeCall[]
  /** channel ID → messages, oldest first */
  readonly messages: Map<string, FakeMessage[]>
  /** files of the external upload flow, in the order their upload URL was asked for */
  readonly uploads: FakeUpload[]
  /** adds a channel (`#name`) and returns its ID */
  addChannel(name: string): string
  channelId(name: string): string
  /** the next `times` calls (of `method`, or any) answer with the fault */
  failNext(times: number, fault: Fault, method?: string): void
  /** every call naming this channel (name or ID) answers `{ ok: false, error }` until cleared */
  failChannel(channel: string, error: string | null): void
  /** top-level messages of a channel */
  posts(channel: string): FakeMessage[]
  /** replies in a thread */
  replies(channel: string, threadTs: string): FakeMessage[]
  callsOf(method: string): FakeCall[]
  close(): Promise<void>
}

function parseBody(req: IncomingMessage, raw: string): Record<string, unknown> {
  const type = req.headers['content-type'] ?? ''
  if (type.includes('application/json')) return raw ? (JSON.parse(raw) as Record<string, unknown>) : {}
  const out: Record<string, unknown> = {}
  for (const [k, v] of new URLSearchParams(raw)) {
    // the WebClient form-encodes objects and arrays as JSON strings, as Slack accepts them
    if ((v.startsWith('{') || v.startsWith('[')) && ['blocks', 'metadata', 'attachments'].includes(k)) {
      try {
        out[k] = JSON.parse(v)
        continue
      } catch {
        /* keep the string */
      }
    }
    out[k] = v
  }
  return out
}

export async function startFakeSlack(opts: { token?: string; channels?: string[] } = {}): Promise<FakeSlack> {
  const token = opts.token ?? 'xoxb-fake-test-token-0123456789'
  const calls: FakeCall[] = []
  const messages = new Map<string, FakeMessage[]>()
  const ids = new Map<string, string>() // '#name' → ID
  const names = new Map<string, string>() // ID → 'name'
  const faults: { fault: Fault; method?: string }[] = []
  const channelFaults = new Map<string, string>()
  const uploads: FakeUpload[] = []
  let baseUrl = ''
  // IDs and timestamps unique per fake, as a workspace's are, so tests sharing a database never collide
  const idPrefix = Math.random().toString(36).slice(2, 6).toUpperCase()
  let tsSeq = Math.floor(Math.random() * 500_000)
  let chanSeq = 0

  const addChannel = (name: string) => {
    const n = name.startsWith('#') ? name : `#${name}`
    let id = ids.get(n)
    if (!id) {
      id = `C${idPrefix}${String(++chanSeq).padStart(5, '0')}`
      ids.set(n, id)
      names.set(id, n.slice(1))
      messages.set(id, [])
    }
    return id
  }
  for (const c of opts.channels ?? []) addChannel(c)

  const resolve = (channel: unknown): string | null => {
    if (typeof channel !== 'string') return null
    if (names.has(channel)) return channel
    return ids.get(channel.startsWith('#') ? channel : `#${channel}`) ?? null
  }
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++tsSeq % 1_000_000).padStart(6, '0')}`

  /** the Slack method itself; returns the JSON body */
  function perform(method: string, p: Record<string, unknown>): Record<string, unknown> {
    switch (method) {
      case 'auth.test':
        return { ok: true, url: 'https://fake.slack.com/', team: 'Fake', user: 'burnwatch', team_id: 'T000', user_id: 'U000', bot_id: 'B000' }
      case 'chat.postMessage': {
        const id = resolve(p.channel)
        if (!id) return { ok: false, error: 'channel_not_found' }
        const threadTs = typeof p.thread_ts === 'string' && p.thread_ts ? p.thread_ts : null
        if (threadTs && !messages.get(id)!.some((m) => m.ts === threadTs)) return { ok: false, error: 'thread_not_found' }
        const m: FakeMessage = {
          channel: id,
          ts: nextTs(),
          thread_ts: threadTs,
          text: String(p.text ?? ''),
          blocks: Array.isArray(p.blocks) ? p.blocks : [],
          metadata: (p.metadata as FakeMessage['metadata']) ?? null,
          edits: 0,
        }
        messages.get(id)!.push(m)
        return { ok: true, channel: id, ts: m.ts, message: { text: m.text, ts: m.ts } }
      }
      case 'chat.update': {
        const id = resolve(p.channel)
        if (!id || id !== p.channel) return { ok: false, error: 'channel_not_found' } // chat.update wants the ID
        const m = messages.get(id)!.find((x) => x.ts === p.ts)
        if (!m) return { ok: false, error: 'message_not_found' }
        m.text = String(p.text ?? '')
        if (Array.isArray(p.blocks)) m.blocks = p.blocks
        if (p.metadata) m.metadata = p.metadata as FakeMessage['metadata']
        m.edits++
        return { ok: true, channel: id, ts: m.ts, text: m.text }
      }
      case 'conversations.history':
      case 'conversations.replies': {
        const id = resolve(p.channel)
        if (!id || id !== p.channel) return { ok: false, error: 'channel_not_found' }
        const oldest = Number(p.oldest ?? 0)
        const withMeta = p.include_all_metadata === true || p.include_all_metadata === 'true'
        const list = messages
          .get(id)!
          .filter((m) => (method === 'conversations.history' ? m.thread_ts === null : m.ts === p.ts || m.thread_ts === p.ts))
          .filter((m) => Number(m.ts) >= oldest)
        const shaped = list.map((m) => ({ type: 'message', ts: m.ts, text: m.text, ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}), ...(withMeta && m.metadata ? { metadata: m.metadata } : {}) }))
        return { ok: true, messages: method === 'conversations.history' ? shaped.reverse() : shaped, has_more: false }
      }
      case 'files.getUploadURLExternal': {
        const length = Number(p.length)
        if (typeof p.filename !== 'string' || !p.filename || !Number.isInteger(length) || length <= 0) return { ok: false, error: 'invalid_arguments' }
        const file_id = `F${idPrefix}${String(uploads.length + 1).padStart(6, '0')}`
        uploads.push({ file_id, filename: p.filename, length, alt_text: typeof p.alt_text === 'string' ? p.alt_text : null, data: null, title: null, channel: null, thread_ts: null, completed: false })
        return { ok: true, upload_url: `${baseUrl}/upload/v1/${file_id}`, file_id }
      }
      case 'files.completeUploadExternal': {
        let files: { id?: string; title?: string }[]
        try {
          files = (typeof p.files === 'string' ? JSON.parse(p.files) : p.files) as { id?: string; title?: string }[]
        } catch {
          return { ok: false, error: 'invalid_arguments' }
        }
        const id = p.channel_id === undefined ? null : resolve(p.channel_id)
        if (p.channel_id !== undefined && (!id || id !== p.channel_id)) return { ok: false, error: 'channel_not_found' }
        const threadTs = typeof p.thread_ts === 'string' && p.thread_ts ? p.thread_ts : null
        if (threadTs && (!id || !messages.get(id)!.some((m) => m.ts === threadTs && m.thread_ts === null))) return { ok: false, error: 'invalid_thread_ts' }
        const found = files.map((f) => uploads.find((u) => u.file_id === f.id))
        // Slack completes only files whose bytes arrived, in full
        if (!Array.isArray(files) || !files.length || found.some((u) => !u || !u.data || u.data.length !== u.length)) return { ok: false, error: 'file_upload_size_mismatch' }
        for (const [i, u] of found.entries()) Object.assign(u!, { title: files[i]!.title ?? u!.filename, channel: id, thread_ts: threadTs, completed: true })
        return { ok: true, files: found.map((u) => ({ id: u!.file_id, title: u!.title, name: u!.filename })) }
      }
      case 'conversations.list':
        return { ok: true, channels: [...names].map(([id, name]) => ({ id, name, is_channel: true })), response_metadata: { next_cursor: '' } }
      default:
        return { ok: false, error: 'unknown_method' }
    }
  }

  /** the upload URL (pre-signed at Slack: no token needed); the client posts the bytes as multipart form data */
  async function receiveUpload(req: IncomingMessage, raw: Buffer, res: ServerResponse) {
    const fileId = (req.url ?? '').slice('/upload/v1/'.length).split('?')[0]
    const u = uploads.find((x) => x.file_id === fileId)
    calls.push({ method: 'upload', params: { file_id: fileId, bytes: raw.length }, status: u ? 200 : 404, error: null, at: Date.now() })
    if (!u) {
      res.writeHead(404).end('no such upload')
      return
    }
    const type = req.headers['content-type'] ?? 'application/octet-stream'
    let data = raw
    if (type.includes('multipart/form-data')) {
      const form = await new Response(new Uint8Array(raw), { headers: { 'content-type': type } }).formData()
      const part = [...form.values()].find((v): v is File => typeof v !== 'string')
      data = part ? Buffer.from(await part.arrayBuffer()) : Buffer.alloc(0)
    }
    u.data = data
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`OK - ${data.length}`)
  }

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      if ((req.url ?? '').startsWith('/upload/v1/')) return void receiveUpload(req, Buffer.concat(chunks), res)
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? ''
      let params: Record<string, unknown>
      try {
        params = parseBody(req, Buffer.concat(chunks).toString('utf8'))
      } catch {
        params = {}
      }
      const call: FakeCall = { method, params, status: 200, error: null, at: Date.now() }
      calls.push(call)
      const send = (status: number, body: Record<string, unknown>, headers: Record<string, string> = {}) => {
        call.status = status
        if (body.ok === false) call.error = String(body.error)
        res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers })
        res.end(JSON.stringify(body))
      }
      const auth = req.headers.authorization ?? (typeof params.token === 'string' ? `Bearer ${params.token}` : '')
      if (auth !== `Bearer ${token}`) return send(200, { ok: false, error: auth ? 'invalid_auth' : 'not_authed' })

      const fi = faults.findIndex((f) => f.method === undefined || f.method === method)
      if (fi >= 0) {
        const { fault } = faults.splice(fi, 1)[0]!
        if (fault.kind === 'rate_limited') return send(429, { ok: false, error: 'ratelimited' }, { 'retry-after': String(fault.retryAfterSec ?? 1) })
        if (fault.kind === 'http_500') {
          if (fault.afterWork) perform(method, params)
          return send(500, { ok: false, error: 'internal_error' })
        }
        return send(200, { ok: false, error: fault.error })
      }
      const id = resolve(params.channel)
      const chFault = channelFaults.get(String(params.channel)) ?? (id ? channelFaults.get(id) : undefined)
      if (chFault) return send(200, { ok: false, error: chFault })
      send(200, perform(method, params))
    })
  })
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res))
  const port = (server.address() as AddressInfo).port
  baseUrl = `http://127.0.0.1:${port}`

  return {
    url: `http://127.0.0.1:${port}/api/`,
    token,
    calls,
    messages,
    uploads,
    addChannel,
    channelId(name) {
      const id = resolve(name)
      if (!id) throw new Error(`fake Slack has no channel ${name}`)
      return id
    },
    failNext(times, fault, method) {
      for (let i = 0; i < times; i++) faults.push(method === undefined ? { fault } : { fault, method })
    },
    failChannel(channel, error) {
      const key = resolve(channel) ?? channel
      if (error === null) {
        channelFaults.delete(key)
        channelFaults.delete(channel)
      } else {
        channelFaults.set(key, error)
        channelFaults.set(channel, error)
      }
    },
    posts(channel) {
      return (messages.get(resolve(channel) ?? '') ?? []).filter((m) => m.thread_ts === null)
    },
    replies(channel, threadTs) {
      return (messages.get(resolve(channel) ?? '') ?? []).filter((m) => m.thread_ts === threadTs)
    },
    callsOf(method) {
      return calls.filter((c) => c.method === method)
    },
    close() {
      server.closeAllConnections()
      return new Promise<void>((res, rej) => server.close((e) => (e ? rej(e) : res())))
    },
  }
}
