/** The messages between the backtest and its decode workers. */
export const FIELDS = 7 // ts, cost, input, output, cacheRead, cacheWrite, flags (1 error, 2 unpriced)

export interface DecodeRequest {
  seq: number
  /** whole lines of the file, newline-separated (the last may lack its newline) */
  text: string
}

export interface NewSeries {
  id: string
  team: string
  endpoint: string
  model: string
  partition: string
}

export interface DecodeResult {
  seq: number
  lines: number
  count: number
  nums: Float64Array
  series: Int32Array
  deps: Int32Array
  ids: string[]
  /** series and deployment IDs first seen in this batch, in the worker's index order */
  newSeries: NewSeries[]
  newDeps: string[]
  invalid: number
  /** the first invalid line of the batch: its index in the batch and the reason */
  firstError: { index: number; reason: string } | null
}
