import { describe, expect, it } from 'vitest'
import { createWindower, type WindowInput } from '../../services/aggregator/windows.ts'

const ev = (ts: number, cost = 0.01, over: Partial<WindowInput> = {}): WindowInput => ({ team: 't', endpoint: 'e', model: 'm', ts, cost, input: 10, output: 5, cacheRead: 0, cacheWrite: 0, costInput: cost * 0.25, costCacheRead: 0, costCacheWrite: 0, costOutput: cost * 0.75, error: false, unpriced: false, deployment: 'd1', ...over })
const T = Date.parse('2026-11-22T10:00:00.000Z')

describe('event-time windows', () => {
  it('closes a window when the watermark (max event time − lateness) passes its end, with exact sums', () => {
    const w = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: false })
    w.add('p0', 's', ev(T + 1_000, 0.1), 0)
    w.add('p0', 's', ev(T + 59_000, 0.3, { error: true, deployment: 'd2' }), 0)
    w.add('p0', 's', ev(T + 85_000), 0)
    expect(w.advance('p0', 0)).toEqual([]) // watermark T+55 s: the first window is still open
    w.add('p0', 's', ev(T + 90_000), 0)
    const [closed, ...rest] = w.advance('p0', 0)
    expect(rest).toEqual([])
    expect(closed).toMatchObject({ window_start: '2026-11-22T10:00:00.000Z', window_end: '2026-11-22T10:01:00.000Z', requests: 2, errors: 1, input_tokens: 20, deployments: { d1: 1, d2: 1 } })
    expect(closed!.cost_usd).toBeCloseTo(0.4, 12)
    expect(closed!.cost_sq_sum).toBeCloseTo(0.01 + 0.09, 12)
    // cost per deployment: the canary comparison reads each ID's own cost and variance
    expect(closed!.deployment_costs?.d1).toBeCloseTo(0.1, 12)
    expect(closed!.deployment_costs?.d2).toBeCloseTo(0.3, 12)
    expect(closed!.deployment_cost_sq?.d2).toBeCloseTo(0.09, 12)
  })

  it('sums the cost of each token component (the window parses as a record; an older record without them parses too)', async () => {
    const { WindowRecord } = await import('../../schemas/window.ts')
    const w = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: false })
    w.add('p0', 's', ev(T + 1_000, 0.1, { costInput: 0.01, costCacheRead: 0.02, costCacheWrite: 0.03, costOutput: 0.04 }), 0)
    w.add('p0', 's', ev(T + 2_000, 0.2, { costInput: 0.05, costCacheRead: 0, costCacheWrite: 0.07, costOutput: 0.08 }), 0)
    const [closed] = w.flush()
    expect(closed!.cost_input_usd).toBeCloseTo(0.06, 12)
    expect(closed!.cost_cache_read_usd).toBeCloseTo(0.02, 12)
    expect(closed!.cost_cache_write_usd).toBeCloseTo(0.1, 12)
    expect(closed!.cost_output_usd).toBeCloseTo(0.12, 12)
    expect(WindowRecord.parse(closed)).toEqual(closed)
    const { cost_input_usd, cost_cache_read_usd, cost_cache_write_usd, cost_output_usd, ...old } = closed!
    expect([cost_input_usd, cost_cache_read_usd, cost_cache_write_usd, cost_output_usd].every((x) => typeof x === 'number')).toBe(true)
    expect(WindowRecord.parse(old)).toEqual(old)
    expect(() => WindowRecord.parse({ ...old, cost_output_usd: -1 })).toThrow()
  })

  it('counts retries from the attributes http.request.resend_count and retry_attempt (integers >= 1 only), apart from errors', async () => {
    const { WindowRecord } = await import('../../schemas/window.ts')
    const { isRetry } = await import('../../schemas/usage-event.ts')
    const attrs: (Record<string, string> | undefined)[] = [
      { 'http.request.resend_count': '1' }, // retry
      { 'http.request.resend_count': '3', tier: 'gold' }, // retry
      { retry_attempt: '2' }, // retry
      { retry_attempt: '1', 'http.request.resend_count': '1' }, // one retry, not two
      { 'http.request.resend_count': '0' },
      { retry_attempt: '0' },
      { 'http.request.resend_count': 'abc' },
      { retry_attempt: '-1' },
      { retry_attempt: '1.5' },
      { 'http.request.resend_count': '' },
      { 'gen_ai.request.retry_count': '2' }, // not a retry attribute
      { retry: '1' },
      {},
      undefined,
    ]
    expect(attrs.map(isRetry)).toEqual([true, true, true, true, false, false, false, false, false, false, false, false, false, false])
    const w = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: false })
    attrs.forEach((a, i) => w.add('p0', 's', ev(T + 1_000 + i, 0.01, { retry: isRetry(a), error: i === 0 || i === 4 }), 0))
    // an input without the flag (a row rebuilt from history before migration 043) is no retry
    const { retry: _, ...noFlag } = ev(T + 30_000)
    w.add('p0', 's', noFlag, 0)
    const [closed] = w.flush()
    expect(closed).toMatchObject({ requests: attrs.length + 1, errors: 2, retries: 4 })
    expect(WindowRecord.parse(closed)).toEqual(closed)
    // an older record without retries parses too; a negative or fractional count does not
    const { retries, ...old } = closed!
    expect(retries).toBe(4)
    expect(WindowRecord.parse(old)).toEqual(old)
    expect(() => WindowRecord.parse({ ...old, retries: -1 })).toThrow()
    expect(() => WindowRecord.parse({ ...old, retries: 1.5 })).toThrow()
  })

  it('sums cost and squared cost per deployment ID over the requests of each', () => {
    const w = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: false })
    w.add('p0', 's', ev(T + 1_000, 0.1, { deployment: 'old' }), 0)
    w.add('p0', 's', ev(T + 2_000, 0.2, { deployment: 'old' }), 0)
    w.add('p0', 's', ev(T + 3_000, 0.5, { deployment: 'canary' }), 0)
    w.add('p0', 's', ev(T + 4_000, 0.7, { deployment: undefined }), 0)
    const [closed] = w.flush()
    expect(closed!.deployments).toEqual({ old: 2, canary: 1 })
    expect(Object.keys(closed!.deployment_costs ?? {}).sort()).toEqual(['canary', 'old'])
    expect(closed!.deployment_costs?.old).toBeCloseTo(0.3, 12)
    expect(closed!.deployment_cost_sq?.old).toBeCloseTo(0.01 + 0.04, 12)
    expect(closed!.deployment_costs?.canary).toBeCloseTo(0.5, 12)
    // a window without deployment IDs carries no per-deployment fields
    w.add('p0', 's', ev(T + 200_000, 0.1, { deployment: undefined }), 0)
    const [plain] = w.flush()
    expect(plain!.deployment_costs).toBeUndefined()
  })

  it('counts an event for a closed window as late, in the series’ next window', () => {
    const w = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: false })
    w.add('p0', 's', ev(T + 1_000), 0)
    w.add('p0', 's', ev(T + 120_000), 0)
    expect(w.advance('p0', 0).map((x) => x.window_start)).toEqual(['2026-11-22T10:00:00.000Z'])
    expect(w.isLate('p0', T + 5_000, T + 120_000)).toBe(true)
    expect(w.add('p0', 's', ev(T + 5_000), 0)).toBe(false)
    const rest = w.flush()
    expect(rest).toHaveLength(1)
    expect(rest[0]).toMatchObject({ window_start: '2026-11-22T10:02:00.000Z', requests: 1, late_events: 1 })
  })

  it('advances an idle partition by wall time in live mode only', () => {
    const live = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: true })
    const backtest = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: false })
    const wall = T + 11_000
    for (const w of [live, backtest]) w.add('p0', 's', ev(T + 10_000), wall)
    expect(live.advance('p0', wall + 79_000)).toHaveLength(0) // 79 s of silence: T+10 s − 30 s + 79 s < T+60 s
    expect(live.advance('p0', wall + 80_000)).toHaveLength(1) // 80 s: = T+60 s
    expect(backtest.advance('p0', wall + 81_000)).toHaveLength(0)
  })

  it('live mode: an event from a clock 4 min 50 s fast moves the watermark no further than the wall clock', () => {
    const w = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: true })
    const wall = T + 30_000
    expect(w.add('p0', 'fast', ev(wall + 290_000), wall)).toBe(true)
    expect(w.watermark('p0')).toBe(wall - 30_000)
    // normal traffic of the next seconds is on time, not late
    for (let i = 1; i <= 20; i++) expect(w.add('p0', 's', ev(wall + i * 1000 - 500), wall + i * 1000)).toBe(true)
    // the fast event's window closes once real time gets past it, the others in order before it
    const closed = w.advance('p0', wall + 20_000 + 400_000).map((x) => `${x.window_start.slice(11, 16)} ${x.requests}`)
    expect(closed).toEqual(['10:00 20', '10:05 1'])
  })

  it('backtest: event time alone drives the watermark, however far from the wall clock', () => {
    const w = createWindower({ windowMs: 60_000, allowedLatenessMs: 30_000, idleAdvance: false })
    w.add('p0', 's', ev(T + 290_000), 0)
    expect(w.watermark('p0')).toBe(T + 260_000)
  })

  it('keeps partitions apart: one partition’s progress does not close another’s windows', () => {
    const w = createWindower({ windowMs: 60_000, allowedLatenessMs: 0, idleAdvance: false })
    w.add('p0', 'a', ev(T), 0)
    w.add('p1', 'b', ev(T + 600_000), 0)
    expect(w.advance('p0', 0)).toEqual([])
    expect(w.openWindows()).toBe(2)
  })
})

describe('series identity', () => {
  it('cannot be forged by separator characters inside names', async () => {
    const { seriesId } = await import('../../schemas/series.ts')
    expect(seriesId({ team: 'a\u0000b', endpoint: 'c', model: 'm' })).not.toBe(seriesId({ team: 'a', endpoint: 'b\u0000c', model: 'm' }))
    expect(seriesId({ team: 'a1:', endpoint: 'x', model: 'm' })).not.toBe(seriesId({ team: 'a', endpoint: ':x', model: 'm' }))
  })
})
