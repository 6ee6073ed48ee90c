/** The notifier's public API (for bin/burnwatch.ts and the embedded `start`). */
export { createNotifier, NOTIFIER_GROUP_ID, groupKeyOf, type Notifier, type NotifierDeps } from './service.ts'
export { addSilence, listSilences, formatSilences, parseUntil, silenceMatches, type Silence, type SilenceInput } from './silences.ts'
export { renderPage, renderThreadReply, reproduceQuery, escapeMrkdwn, sqlStringLiteral, type RenderOptions, type SlackMessage } from './render.ts'
export { createSlackSink, type SlackSinkOptions } from './slack.ts'
export { createConsoleSink, type ConsoleSinkOptions } from './console.ts'
export { notifierMetrics, type NotifierMetrics } from './metrics.ts'
export type { PageSink } from './sink.ts'
