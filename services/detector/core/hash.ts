/** Deterministic short hash (cyrb53, two 32-bit lanes) for alert ids: same input, same id, in every process. */
export function shortHash(text: string): string {
  let h1 = 0xdeadbeef
  let h2 = 0x41c6ce57
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i)
    h1 = Math.imul(h1 ^ ch, 2654435761)
    h2 = Math.imul(h2 ^ ch, 1597334677)
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909)
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909)
  return (h2 >>> 0).toString(16).padStart(8, '0') + (h1 >>> 0).toString(16).padStart(8, '0')
}

export function alertId(team: string, endpoint: string | null, model: string | null, signal: string, startedAtMs: number): string {
  return 'bw-' + shortHash(`${team}|${endpoint ?? '*'}|${model ?? '*'}|${signal}|${startedAtMs}`)
}
