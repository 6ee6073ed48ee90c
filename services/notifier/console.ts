/**
 * Console adapter of the page sink, for the embedded mode without SLACK_BOT_TOKEN: each page
 * is written in readable form to a stream (stdout in the CLI) and appended as one JSON line to
 * `<dataDir>/pages.ndjson`, which also serves `findPosted` after a crash. Charts are written to
 * `<dataDir>/charts/` and their path printed. Names from events reach the terminal without their
 * control characters (shared/text.ts `printable`): an ANSI escape in an endpoint name is dropped.
 */
import { appendFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import type { Writable } from 'node:stream'
import type { KnownBlock } from '@slack/web-api'
import { printable } from '../../shared/text.ts'
import type { OutgoingPage, PageAttachment, PageRef, PageSink, PostedPage } from './sink.ts'

export interface ConsoleSinkOptions {
  stream: Writable
  /** NDJSON file the pages are appended to, e.g. `<dataDir>/pages.ndjson` */
  file: string
  /** folder of the charts; default `charts/` beside `file` (`<dataDir>/charts`) */
  chartsDir?: string
}

interface PageLine {
  kind: 'post' | 'update'
  at: string
  channel: string
  ts: string
  thread_ts: string | null
  text: string
  deliveries: string[]
  blocks: KnownBlock[]
}

/** Slack mrkdwn to terminal text: links as `label (url)`, dates as their fallback, entities decoded. */
export function mrkdwnToPlain(s: string): string {
  return s
    .replace(/<!date\^\d+\^[^|>]*\|([^>]*)>/g, '$1')
    .replace(/<(https?:[^|>]+)\|([^>]+)>/g, '$2 ($1)')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&')
}

/** A page in readable form: the header, each section, the context lines. */
export function formatForConsole(blocks: readonly KnownBlock[], fallback: string): string {
  const out: string[] = []
  for (const b of blocks) {
    if (b.type === 'header') out.push(b.text.text)
    else if (b.type === 'section' && b.text) out.push(mrkdwnToPlain(b.text.text))
    else if (b.type === 'context') {
      for (const e of b.elements) if ('text' in e && typeof e.text === 'string') out.push(mrkdwnToPlain(e.text))
    } else if (b.type === 'divider') out.push('  ---')
  }
  return out.length ? out.join('\n') : mrkdwnToPlain(fallback)
}

export function createConsoleSink(o: ConsoleSinkOptions): PageSink {
  let seq = 0
  mkdirSync(dirname(o.file), { recursive: true })

  const append = (line: PageLine) => appendFileSync(o.file, JSON.stringify(line) + '\n')
  const print = (text: string) => o.stream.write(printable(text, { multiline: true }))
  const chartsDir = o.chartsDir ?? join(dirname(o.file), 'charts')
  const nextTs = () => `${Math.floor(Date.now() / 1000)}.${String(++seq).padStart(6, '0')}`

  return {
    kind: 'console',
    async post(page: OutgoingPage): Promise<PostedPage> {
      const ts = nextTs()
      const where = page.threadTs ? `${page.channel} (thread ${page.threadTs})` : page.channel
      print(`\n──── page → ${where} ──── ${new Date().toISOString()}\n${formatForConsole(page.blocks, page.text)}\n`)
      append({ kind: 'post', at: new Date().toISOString(), channel: page.channel, ts, thread_ts: page.threadTs ?? null, text: page.text, deliveries: page.deliveries, blocks: page.blocks })
      return { channel: page.channel, ts, attempts: 1 }
    },
    async update(ref: PageRef, message) {
      print(`\n──── page ${ref.ts} in ${ref.channel} now reads ────\n${formatForConsole(message.blocks, message.text)}\n`)
      append({ kind: 'update', at: new Date().toISOString(), channel: ref.channel, ts: ref.ts, thread_ts: null, text: message.text, deliveries: message.deliveries, blocks: message.blocks })
    },
    async findPosted(channel: string, key: string, sinceMs: number): Promise<PageRef | null> {
      if (!existsSync(o.file)) return null
      for (const raw of readFileSync(o.file, 'utf8').split('\n')) {
        if (!raw.trim()) continue
        try {
          const l = JSON.parse(raw) as PageLine
          if (l.kind === 'post' && l.channel === channel && Date.parse(l.at) >= sinceMs - 60_000 && l.deliveries.includes(key)) return { channel: l.channel, ts: l.ts }
        } catch {
          // a torn last line after a crash: ignore it
        }
      }
      return null
    },
    async attach(ref: PageRef, file: PageAttachment): Promise<{ location: string }> {
      mkdirSync(chartsDir, { recursive: true })
      const path = join(chartsDir, `${ref.ts}-${file.filename.replace(/[^A-Za-z0-9._-]/g, '_')}`)
      writeFileSync(path, file.data)
      const shown = relative(process.cwd(), path)
      print(`  chart (${ref.channel}, thread ${ref.ts}): ${shown.startsWith('..') ? path : shown}\n`)
      return { location: path }
    },
    async stop() {},
  }
}
