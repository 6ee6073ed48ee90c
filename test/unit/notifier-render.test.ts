import { describe, expect, it } from 'vitest'
import { makeAlert } from '../support/alerts.ts'
import { formatForConsole } from '../../services/notifier/console.ts'
import { latestByAlertIdsQuery, pageMembersQuery, recentGroupPagesQuery } from '../../services/notifier/deliveries.ts'
import {
  canaryLine,
  describeDrivers,
  deploymentUrl,
  escapeMrkdwn,
  formatUsd,
  pageState,
  renderPage,
  renderThreadReply,
  reproduceQuery,
  sqlStringLiteral,
} from '../../services/notifier/render.ts'
import { parseUntil, silenceMatches } from '../../services/notifier/silences.ts'

const alert = makeAlert

const allText = (m: { text: string; blocks: unknown[] }) => m.text + '\n' + JSON.stringify(m.blocks)
const opts = { deploymentUrlTemplate: 'https://deploys.example.com/{deployment_id}?env=prod', mention: '<!subteam^S012345>' }

describe('notifier render (pure)', () => {
  it('a firing page says what broke, by how much, since when, deployments as links, drivers, impact, mention and a query', () => {
    const m = renderPage([alert()], opts)
    const t = allText(m)
    expect(m.blocks[0]).toMatchObject({ type: 'header' })
    expect(t).toContain('search')
    expect(t).toContain('POST /v1/summarize')
    expect(t).toContain('gpt-4o-mini')
    expect(t).toContain('cost per request')
    expect(t).toContain('$0.00120/request')
    expect(t).toContain('$0.00170/request')
    expect(t).toContain('+42%')
    expect(t).toContain('<!date^' + Date.parse('2026-11-22T10:03:00.000Z') / 1000)
    expect(t).toContain('<https://deploys.example.com/deploy-2026-11-22.3?env=prod|deploy-2026-11-22.3>')
    expect(t).toContain('output tokens/request +38 pp')
    expect(t.indexOf('output tokens/request')).toBeLessThan(t.indexOf('input tokens/request'))
    expect(t).toContain('$12,346/month')
    expect(t).toContain('critical')
    expect(m.text.startsWith('<!subteam^S012345>')).toBe(true)
    expect(t).toContain('FROM cost_windows')
  })

  it('a break paged by the canary comparison says "caught in canary: <id>, <share> of traffic, <change> per request", in the page, a group line and the console', () => {
    const canary = { deployment_id: 'r778', compared_with: 'r777', traffic_pct: 12.3, change_pct: 45.2 }
    expect(canaryLine(canary)).toBe('caught in canary: r778, 12% of traffic, +45% per request')
    expect(canaryLine({ ...canary, traffic_pct: 4.56, change_pct: 8.04 })).toBe('caught in canary: r778, 4.6% of traffic, +8.0% per request')
    const a = alert({ canary, deployment_ids: ['r778', 'r777'] })
    const t = allText(renderPage([a], opts))
    expect(t).toContain('caught in canary: <https://deploys.example.com/r778?env=prod|r778>, 12% of traffic, +45% per request')
    expect(t).toContain('r777')
    // no canary line on a page the canary comparison did not raise
    expect(allText(renderPage([alert()], opts))).not.toContain('canary')
    // a group page's other series
    const group = allText(renderPage([alert(), alert({ ...a, alert_id: 'other', endpoint: 'POST /v1/other' })], opts))
    expect(group).toContain('caught in canary')
    const plain = renderPage([a], {})
    expect(formatForConsole(plain.blocks, plain.text)).toContain('caught in canary: `r778`, 12% of traffic, +45% per request')
  })

  it('team totals say "team total" and the query has no endpoint/model filter', () => {
    const a = alert({ endpoint: null, model: null, signal: 'burn_rate', baseline: 40, current: 55 })
    const m = renderPage([a])
    expect(allText(m)).toContain('team total')
    expect(allText(m)).toContain('$55.00/h')
    const q = reproduceQuery(a)
    expect(q).toContain("team = 'search'")
    expect(q).not.toContain('endpoint =')
    expect(q).not.toContain('model =')
  })

  it('a downward break (a saving) is a notice: the page and its updates carry no mention', () => {
    const down = alert({ direction: 'down', change_pct: -35, severity: 'info' })
    expect(allText(renderPage([down], opts))).not.toContain('<!subteam^S012345>')
    expect(allText(renderThreadReply({ ...down, status: 'updated' }, opts))).not.toContain('<!subteam^S012345>')
    expect(allText(renderPage([alert()], opts))).toContain('<!subteam^S012345>')
  })

  it('escapes mrkdwn control characters in names so <!channel> is inert', () => {
    const a = alert({ endpoint: 'evil <!channel> & <https://x.example|click>', team: 't<!here>', deployment_ids: ['<!everyone>'] })
    const m = renderPage([a], opts)
    const t = allText(m)
    expect(t).not.toContain('<!channel>')
    expect(t).not.toContain('<!here>')
    expect(t).not.toContain('<!everyone>')
    expect(t).not.toContain('<https://x.example')
    expect(t).toContain('evil &lt;!channel&gt; &amp; &lt;https://x.example|click&gt;')
    // the deployment id is URL-encoded in the link
    expect(t).toContain('https://deploys.example.com/%3C!everyone%3E?env=prod')
    // the config's mention stays active
    expect(m.text).toContain('<!subteam^S012345>')
    for (const r of [renderThreadReply({ ...a, status: 'updated' }), renderThreadReply({ ...a, status: 'resolved' })]) {
      expect(allText(r)).not.toContain('<!channel>')
      expect(allText(r)).not.toContain('<!here>')
    }
  })

  it('the reproducing query escapes names as SQL string literals', () => {
    expect(sqlStringLiteral("it's")).toBe("'it\\'s'")
    expect(sqlStringLiteral('a\\b')).toBe("'a\\\\b'")
    expect(sqlStringLiteral('```')).toBe("'\\x60\\x60\\x60'")
    expect(sqlStringLiteral('x\ny')).toBe("'x\\ny'")
    const q = reproduceQuery(alert({ endpoint: "O'Brien\\", model: 'm`x' }))
    expect(q).toContain("endpoint = 'O\\'Brien\\\\'")
    expect(q).toContain("model = 'm\\x60x'")
    expect(q).toContain("window_start >= toDateTime('2026-11-22 08:03:00', 'UTC')")
  })

  it('deployment links need an http(s) template and encode the id', () => {
    expect(deploymentUrl('https://d.example/{deployment_id}', 'a/b c')).toBe('https://d.example/a%2Fb%20c')
    expect(deploymentUrl('javascript:{deployment_id}', 'x')).toBeNull()
    expect(deploymentUrl(null, 'x')).toBeNull()
    const t = allText(renderPage([alert()]))
    expect(t).toContain('`deploy-2026-11-22.3`')
  })

  it('updated and resolved replies, and the parent showing the current state', () => {
    const worse = alert({ status: 'updated', current: 0.0025, change_pct: 108.3 })
    const r = renderThreadReply(worse, opts, alert())
    expect(r.blocks).toHaveLength(1)
    expect(allText(r)).toContain('worse')
    expect(allText(r)).toContain('+108%')
    expect(allText(r)).toContain('was +42%')
    expect(r.text.startsWith('worse')).toBe(true)
    const res = renderThreadReply(alert({ status: 'resolved', current: 0.00121, change_pct: 0.8, detected_at: '2026-11-22T11:33:00.000Z' }), opts)
    expect(allText(res)).toContain('resolved')
    expect(allText(res)).toContain('1 h 30 min')
    expect(allText(res)).not.toContain('subteam') // a resolution does not page anybody
    expect(pageState([alert({ status: 'resolved' }), alert({ alert_id: 'b', status: 'updated' })])).toBe('updated')
    const parent = renderPage([alert({ status: 'resolved' })], opts)
    expect(JSON.stringify(parent.blocks[0])).toContain('Resolved')
    expect(parent.text).not.toContain('subteam')
  })

  it('a group page lists every series and names the shared deployment', () => {
    const g = [alert(), alert({ alert_id: 'a-2', endpoint: 'POST /v1/chat', model: 'gpt-4o' }), alert({ alert_id: 'a-3', endpoint: null, model: null })]
    const m = renderPage(g, opts)
    const t = allText(m)
    expect(t).toContain('3 series broke trend after deploy-2026-11-22.3')
    expect(t).toContain('POST /v1/chat')
    expect(t).toContain('team total')
    expect(t.match(/FROM cost_windows/g)).toHaveLength(3)
    expect(m.blocks.length).toBeLessThanOrEqual(50)
  })

  it('numbers and drivers in plain words', () => {
    expect(formatUsd(0.000123)).toBe('$0.000123')
    expect(formatUsd(12.3)).toBe('$12.30')
    expect(formatUsd(-2500)).toBe('-$2,500')
    expect(describeDrivers({ input_tokens_per_request: 0, output_tokens_per_request: 0, cache_reads: -12, price: 30, error_share: 0, primary: 'price' })).toBe(
      'price per token (catalog or reported cost) +30 pp, cache reads −12 pp',
    )
    expect(escapeMrkdwn('a<b>&c')).toBe('a&lt;b&gt;&amp;c')
  })

  it('console form is readable: links as text (url), entities decoded', () => {
    const m = renderPage([alert({ endpoint: 'a<b' })], opts)
    const plain = formatForConsole(m.blocks, m.text)
    expect(plain).toContain('a<b')
    expect(plain).toContain('deploy-2026-11-22.3 (https://deploys.example.com/deploy-2026-11-22.3?env=prod)')
    expect(plain).toContain('2026-11-22 10:03 UTC')
  })
})

describe('notifier query builders and silences', () => {
  it('queries take every outside value as a parameter', () => {
    const q = latestByAlertIdsQuery(["x'); DROP TABLE alerts; --"])
    expect(q.query).not.toContain('DROP')
    expect(q.query_params).toEqual({ ids: ["x'); DROP TABLE alerts; --"] })
    expect(pageMembersQuery('C1', '1.2').query_params).toEqual({ channel: 'C1', thread_ts: '1.2' })
    expect(recentGroupPagesQuery('k', 5).query).toContain('{group_key:String}')
  })

  it('silence matching: team-wide, by endpoint/model, expiry', () => {
    const now = Date.parse('2026-11-22T10:00:00Z')
    const until = '2026-11-22T12:00:00.000Z'
    const a = { team: 'search', endpoint: 'e', model: 'm' }
    expect(silenceMatches({ team: 'search', endpoint: null, model: null, until }, a, now)).toBe(true)
    expect(silenceMatches({ team: 'search', endpoint: 'e', model: null, until }, a, now)).toBe(true)
    expect(silenceMatches({ team: 'search', endpoint: 'other', model: null, until }, a, now)).toBe(false)
    expect(silenceMatches({ team: 'search', endpoint: 'e', model: null, until }, { ...a, endpoint: null, model: null }, now)).toBe(false)
    expect(silenceMatches({ team: 'ads', endpoint: null, model: null, until }, a, now)).toBe(false)
    expect(silenceMatches({ team: 'search', endpoint: null, model: null, until }, a, Date.parse(until))).toBe(false)
    expect(parseUntil('2h', now).toISOString()).toBe('2026-11-22T12:00:00.000Z')
    expect(parseUntil('2026-11-23T09:00:00Z', now).toISOString()).toBe('2026-11-23T09:00:00.000Z')
    expect(() => parseUntil('tomorrow', now)).toThrow(/duration from now/)
  })
})
