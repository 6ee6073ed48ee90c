/**
 * Pages for the drills: synthetic cost windows with trend breaks (for the detector), synthetic
 * alert records (for the notifier), and a counter of what the fake Slack really received: the
 * delivery keys `(status:alert_id)` each message carried when it was created (chat.update later
 * rewrites a page's metadata, so the creation-time copy is what counts).
 */
import type { FakeSlack } from '../support/fake-slack.ts'
import type { AlertRecord } from '../../schemas/alert.ts'
import type { WindowRecord } from '../../schemas/window.ts'
import { alertDeliveryKey } from '../../services/notifier/sink.ts'
import { metadataDeliveries } from '../../services/notifier/slack.ts'
import { mulberry32 } from '../../services/demo/traffic.ts'

export interface WindowPlan {
  teams: number
  endpointsPerTeam: number
  windows: number
}

/**
 * One-minute windows, ordered by (window_start, team, endpoint, model) as the detector's rebuild
 * reads them, ending a few minutes ago (within the detector's 1 h recovery span). Half the
 * series step up in cost per request (+60% output tokens) with a new deployment at a staggered
 * minute; a few step back down later.
 */
export function syntheticWindows(plan: WindowPlan, endMs = Date.now() - 3 * 60_000, seed = 11): WindowRecord[] {
  const rand = mulberry32(seed)
  const startMs = Math.floor((endMs - plan.windows * 60_000) / 60_000) * 60_000
  const out: WindowRecord[] = []
  for (let m = 0; m < plan.windows; m++) {
    const ws = startMs + m * 60_000
    for (let t = 0; t < plan.teams; t++) {
      for (let e = 0; e < plan.endpointsPerTeam; e++) {
        const idx = t * plan.endpointsPerTeam + e
        const stepAt = plan.windows - 40 + (idx % 8)
        const breaks = idx % 2 === 0
        const back = breaks && idx % 6 === 0 && m >= stepAt + 15
        const stepped = breaks && m >= stepAt && !back
        const requests = 80 + Math.floor(rand() * 20)
        const inputPer = 1200
        const outputPer = stepped ? 480 : 300
        const cpr = (inputPer * 0.15 + outputPer * 0.6) / 1e6
        const noise = 1 + (rand() - 0.5) * 0.04
        const cost = requests * cpr * noise
        out.push({
          team: `drill-team-${t}`,
          endpoint: `POST /v1/feature-${e}`,
          model: 'gpt-4o-mini',
          window_start: new Date(ws).toISOString(),
          window_end: new Date(ws + 60_000).toISOString(),
          requests,
          errors: 0,
          input_tokens: requests * inputPer,
          output_tokens: requests * outputPer,
          cache_read_tokens: 0,
          cache_write_tokens: 0,
          cost_usd: Number(cost.toFixed(9)),
          cost_sq_sum: Number(((cost * cost) / requests) * 1.05).valueOf(),
          unpriced_requests: 0,
          late_events: 0,
          deployments: { [stepped ? `api-${t}-new` : `api-${t}-base`]: requests },
        })
      }
    }
  }
  return out
}

/** Alert state changes: per team `perTeam` breaks, each firing, two thirds updated, half resolved. */
export function syntheticAlerts(label: string, teams: number, perTeam: number): AlertRecord[] {
  const now = Date.now()
  const firing: AlertRecord[] = []
  const later: AlertRecord[] = []
  for (let t = 0; t < teams; t++) {
    for (let i = 0; i < perTeam; i++) {
      const base: AlertRecord = {
        alert_id: `${label}-a-${t}-${i}`,
        status: 'firing',
        team: `drill-team-${t}`,
        endpoint: `POST /v1/feature-${i}`,
        model: 'gpt-4o-mini',
        signal: 'cost_per_request',
        direction: 'up',
        baseline: 0.0021,
        current: 0.0031,
        change_pct: 47.6,
        started_at: new Date(now - 20 * 60_000 - i * 61_000).toISOString(),
        detected_at: new Date(now - 10 * 60_000).toISOString(),
        // every third break shares its team's deployment with the previous one: grouped pages
        deployment_ids: [`${label}-dep-${t}-${i - (i % 3 === 2 ? 1 : 0)}`],
        drivers: { input_tokens_per_request: 5, output_tokens_per_request: 90, cache_reads: 0, price: 0, error_share: 5, primary: 'output_tokens_per_request' },
        severity: 'warning',
        monthly_impact_usd: 1234.5,
      }
      firing.push(base)
      if (i % 3 !== 0) later.push({ ...base, status: 'updated', current: 0.0041, change_pct: 95.2, detected_at: new Date(now - 8 * 60_000).toISOString() })
      if (i % 2 === 0) later.push({ ...base, status: 'resolved', current: 0.0021, change_pct: 0, detected_at: new Date(now - 5 * 60_000).toISOString() })
    }
  }
  // per team: firing first, then updated before resolved (one key per team keeps this order)
  const rank = { firing: 0, updated: 1, resolved: 2 }
  return [...firing, ...later].sort((a, b) => rank[a.status] - rank[b.status])
}

export function expectedPages(alerts: readonly AlertRecord[]): Set<string> {
  return new Set(alerts.map(alertDeliveryKey))
}

export interface PageCount {
  deliveredExpected: number
  duplicates: number
  lost: number
  unexpected: number
  notes: string[]
}

/** Counts the delivery keys of every message the fake Slack created (top level and thread replies). */
export function pageCounter(slack: FakeSlack) {
  const counts = new Map<string, number>()
  const hook = (arr: { metadata: { event_payload: Record<string, unknown> } | null }[]) => {
    const push = arr.push.bind(arr)
    arr.push = (...items) => {
      for (const m of items) for (const k of metadataDeliveries(m.metadata?.event_payload?.deliveries)) counts.set(k, (counts.get(k) ?? 0) + 1)
      return push(...items)
    }
  }
  for (const arr of slack.messages.values()) hook(arr)
  return {
    keys: () => new Set(counts.keys()),
    counts,
    compare(expected: Set<string>): PageCount {
      let deliveredExpected = 0
      let duplicates = 0
      let unexpected = 0
      for (const [k, n] of counts) {
        if (expected.has(k)) deliveredExpected++
        else unexpected++
        if (n > 1) duplicates += n - 1
      }
      const lost = [...expected].filter((k) => !counts.has(k))
      const notes: string[] = []
      if (lost.length) notes.push(`never delivered: ${lost.slice(0, 5).join(', ')}${lost.length > 5 ? ` (+${lost.length - 5})` : ''}`)
      if (unexpected) notes.push(`${unexpected} unexpected delivery keys`)
      const dup = [...counts].filter(([, n]) => n > 1).map(([k]) => k)
      if (dup.length) notes.push(`delivered more than once: ${dup.slice(0, 5).join(', ')}`)
      return { deliveredExpected, duplicates, lost: lost.length, unexpected, notes }
    },
  }
}
