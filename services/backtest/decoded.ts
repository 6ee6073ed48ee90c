/** The messages between the backtest and its decode workers. */
export const FIELDS = 11 // ts, cost, input, output, cacheRead, cacheWrite, flags (1 error, 2 unpriced, 4 retry), cost of uncached input, cache reads, cache writes, output

/** How far (in segments) a worker may run ahead of the main thread: bounds memory. */
export const MAX_AHEAD = 16

export interface WorkerSetup {
  eventsPath: string
  index: number
  count: number
  partitions: number
  now: number
  /** Int32Array over a SharedArrayBuffer: [0] = the last segment the main thread applied */
  progress: SharedArrayBuffer
}

export interface NewSeries {
  id: string
  team: string
  endpoint: string
  model: string
  environment: string
  partition: string
}

export interface DecodeResult {
  kind: 'segment'
  /** segment number: segments are the file cut at the last newline of each 1 MiB read */
  seq: number
  bytes: number
  lines: number
  count: number
  nums: Float64Array<ArrayBuffer>
  series: Int32Array<ArrayBuffer>
  deps: Int32Array<ArrayBuffer>
  /** the event IDs back to back (one string to pass, not one per event); event k's is idText.slice(idEnds[k - 1] ?? 0, idEnds[k]) */
  idText: string
  idEnds: Int32Array<ArrayBuffer>
  /** idFingerprint of each ID, for the main thread's deduplication */
  fingerprints: Int32Array<ArrayBuffer>
  /** series and deployment IDs first seen in this segment, in this worker's index order */
  newSeries: NewSeries[]
  newDeps: string[]
  invalid: number
  /** the first invalid line of the segment: its index in the segment and the reason */
  firstError: { index: number; reason: string } | null
}

export interface WorkerDone {
  kind: 'done'
  /** number of segments in the file */
  segments: number
}
