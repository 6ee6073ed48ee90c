/** Event-time helpers (no clock reads: all time comes from the records). */
export function toMs(iso: string): number {
  const ms = Date.parse(iso)
  if (!Number.isFinite(ms)) throw new Error(`invalid timestamp ${JSON.stringify(iso)}`)
  return ms
}

export function toIso(ms: number): string {
  return new Date(ms).toISOString()
}
