/**
 * Security checks (docs/reliability.md "Security"), against the real broker and engine:
 *   - an ingest key cannot write another team's events (403), a bad key gets 401;
 *   - secrets set in the environment never appear in any log line or error of the real CLI,
 *     with Slack and ClickHouse failing;
 *   - the analyst role: on chDB roles are unsupported, said so (the read-only login on a server:
 *     test/server/analyst-role.test.ts);
 *   - user-supplied names reach ClickHouse only as query parameters: stored verbatim and
 *     queried back, and a static scan of services/ and shared/ for SQL text built by
 *     interpolating values.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { randomBytes } from 'node:crypto'
import ts from 'typescript'
import { createLogger } from '../../shared/logger.ts'
import { createRegistry } from '../../shared/metrics.ts'
import { loadConfig, topicNames } from '../../shared/config.ts'
import { createKafkaBus } from '../../shared/bus/kafka.ts'
import { createIngestServer } from '../../services/ingest/server.ts'
import { createClickHouseUsageStore } from '../../services/aggregator/clickhouse-store.ts'
import { addSilence, listSilences } from '../../services/notifier/index.ts'
import { analystRoleStatements, ensureAnalystRole } from '../../shared/clickhouse/roles.ts'
import { openTestClickHouse } from '../support/clickhouse.ts'
import { startFakeSlack } from '../support/fake-slack.ts'
import { REPO_ROOT, startBurnwatch, type Child } from '../support/processes.ts'
import { waitFor } from '../support/pipeline.ts'

const brokers = inject('kafkaBrokers')
const target = inject('clickhouse')
const silent = createLogger({ level: 'silent' })
const SQL = `'; DROP TABLE usage_events; --`
const children: Child[] = []
afterAll(() => {
  for (const c of children) c.kill('SIGKILL')
})

const event = (team: string, i = 0) => ({
  event_id: `sec-${randomBytes(6).toString('hex')}-${i}`,
  timestamp: new Date().toISOString(),
  team,
  endpoint: 'POST /v1/summarize',
  model: 'gpt-4o-mini',
  input_tokens: 100,
  output_tokens: 20,
})

describe('ingest keys', () => {
  it('a key writes only for its own teams: 403 for another team, 401 for a bad key, and no key in any answer or log', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bw-sec-'))
    const searchKey = `search-${randomBytes(16).toString('hex')}`
    const growthKey = `growth-${randomBytes(16).toString('hex')}`
    writeFileSync(join(dir, 'burnwatch.yaml'), 'ingest_keys:\n  - key_env: SEARCH_INGEST_KEY\n    teams: [search]\n  - key_env: GROWTH_INGEST_KEY\n    teams: [growth]\n')
    const prefix = `sec${randomBytes(4).toString('hex')}.`
    const config = loadConfig({ KAFKA_BROKERS: brokers.join(','), KAFKA_TOPIC_PREFIX: prefix, BURNWATCH_CONFIG: join(dir, 'burnwatch.yaml'), SEARCH_INGEST_KEY: searchKey, GROWTH_INGEST_KEY: growthKey, PORT: '0' })
    const lines: string[] = []
    const logger = createLogger({ level: 'debug', secrets: config.secrets, destination: { write: (s: string) => void lines.push(s) } })
    const bus = createKafkaBus({ brokers, clientId: 'sec-it', logger: silent })
    await bus.ensureTopics([{ topic: topicNames(prefix).events }])
    const server = createIngestServer({ bus, config, logger, registry: createRegistry() })
    const { url } = await server.start()
    try {
      const send = async (key: string | null, body: unknown) => {
        const res = await fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) }, body: JSON.stringify(body) })
        return { status: res.status, text: await res.text() }
      }
      const own = await send(searchKey, [event('search', 1)])
      expect(own.status).toBe(202)
      const other = await send(searchKey, [event('search', 2), event('growth', 3)])
      expect(other.status).toBe(403)
      expect(other.text).toContain("team 'growth'")
      expect(other.text).toContain('SEARCH_INGEST_KEY') // names the key by its variable, never by value
      const none = await send(null, [event('search', 4)])
      expect(none.status).toBe(401)
      const wrong = await send(`${searchKey}x`, [event('search', 5)])
      expect(wrong.status).toBe(401)
      const sqlTeam = await send(growthKey, [event(SQL, 6)])
      expect(sqlTeam.status).toBe(403)
      for (const text of [own.text, other.text, none.text, wrong.text, sqlTeam.text, ...lines]) {
        expect(text).not.toContain(searchKey)
        expect(text).not.toContain(growthKey)
      }
      expect(lines.some((l) => l.includes('ingest request rejected'))).toBe(true)
    } finally {
      await server.stop()
      await bus.stop()
    }
  })
})

describe('secrets never logged', () => {
  const slackToken = `xoxb-${randomBytes(12).toString('hex')}`
  const chPassword = `chpw-${randomBytes(12).toString('hex')}`
  const ingestKey = `ik-${randomBytes(16).toString('hex')}`
  const secrets = [slackToken, chPassword, ingestKey]
  const dir = mkdtempSync(join(tmpdir(), 'bw-sec-cli-'))
  writeFileSync(join(dir, 'burnwatch.yaml'), 'ingest_keys:\n  - key_env: SEARCH_INGEST_KEY\n    teams: [search]\n')
  const env = (extra: Record<string, string>) => ({
    KAFKA_BROKERS: brokers.join(','),
    KAFKA_TOPIC_PREFIX: `sec${randomBytes(4).toString('hex')}.`,
    BURNWATCH_CONFIG: join(dir, 'burnwatch.yaml'),
    SEARCH_INGEST_KEY: ingestKey,
    SLACK_BOT_TOKEN: slackToken,
    CLICKHOUSE_PASSWORD: chPassword,
    LOG_LEVEL: 'debug',
    ...extra,
  })
  const clean = (out: string) => {
    for (const s of secrets) expect(out, `a secret leaked:\n${out.slice(0, 3000)}`).not.toContain(s)
  }

  it('ClickHouse unreachable: `start` and `doctor` fail without printing the password (also when it is in the URL)', { timeout: 60_000 }, async () => {
    for (const url of ['http://127.0.0.1:1', `http://default:${chPassword}@127.0.0.1:1`]) {
      const start = startBurnwatch(['start'], env({ CLICKHOUSE_URL: url, BURNWATCH_DATA_DIR: dir, PORT: '0' }))
      children.push(start)
      expect(await start.exited).not.toBe(0)
      expect(start.output()).toMatch(/ClickHouse|ECONNREFUSED/i)
      clean(start.output())
      const doctor = startBurnwatch(['doctor'], env({ CLICKHOUSE_URL: url, BURNWATCH_DATA_DIR: dir, SLACK_API_URL: 'http://127.0.0.1:1/api/' }))
      children.push(doctor)
      expect(await doctor.exited).toBe(1)
      expect(doctor.output()).toContain('FAIL')
      clean(doctor.output())
    }
  })

  it('Slack refusing and failing, bad ingest keys: the running stages log the failures, never the secrets', { timeout: 120_000 }, async () => {
    // a fake Slack that knows another token (invalid_auth), then answers 500s and 429s
    const slack = await startFakeSlack({ channels: ['#ai-spend'] })
    slack.failNext(3, { kind: 'http_500' })
    slack.failNext(2, { kind: 'rate_limited', retryAfterSec: 1 })
    try {
      const dataDir = mkdtempSync(join(tmpdir(), 'bw-sec-run-'))
      const e = env({ SLACK_API_URL: slack.url, BURNWATCH_DATA_DIR: dataDir, PORT: '0' })
      const proc = startBurnwatch(['start'], e)
      children.push(proc)
      const url = await waitFor('the ingest API', () => /Ingest API listening on (\S+)\./.exec(proc.output())?.[1], 90_000)
      const post = (auth: string, body: unknown) => fetch(`${url}/v1/events`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: auth }, body: JSON.stringify(body) }).then((r) => r.status)
      expect(await post(`Bearer ${ingestKey}`, [event('growth')])).toBe(403)
      expect(await post(`Bearer ${slackToken}`, [event('search')])).toBe(401)
      expect(await post(`Bearer ${ingestKey}`, [{ ...event('search'), input_tokens: 'NaN' }])).toBe(400)
      expect(await post(`Bearer ${ingestKey}`, [event('search')])).toBe(202)
      // an alert straight onto cost.alerts: the notifier calls Slack with a token Slack refuses
      const { Kafka, logLevel } = await import('kafkajs')
      const producer = new Kafka({ clientId: 'sec-it', brokers, logLevel: logLevel.NOTHING }).producer()
      await producer.connect()
      const now = new Date().toISOString()
      await producer.send({
        topic: topicNames(e.KAFKA_TOPIC_PREFIX).alerts,
        messages: [
          {
            key: 'search',
            value: JSON.stringify({
              alert_id: 'sec-alert-1', status: 'firing', team: 'search', endpoint: 'POST /v1/summarize', model: 'gpt-4o-mini', signal: 'cost_per_request', direction: 'up',
              baseline: 0.001, current: 0.002, change_pct: 100, started_at: now, detected_at: now, deployment_ids: ['d1'],
              drivers: { input_tokens_per_request: 0, output_tokens_per_request: 100, cache_reads: 0, price: 0, error_share: 0, primary: 'output_tokens_per_request' }, severity: 'critical', monthly_impact_usd: 100,
            }),
          },
        ],
      })
      await producer.disconnect()
      await waitFor('the notifier to give up on the refused token', () => /invalid_auth/.test(proc.output()), 60_000)
      proc.kill('SIGTERM')
      await proc.exited
      const out = proc.output()
      expect(out).toContain('ingest request rejected')
      expect(slack.calls.length).toBeGreaterThan(0)
      clean(out)
    } finally {
      await slack.close()
    }
  })
})

describe('analyst role', () => {
  // this file runs in the embedded project (chDB) only; the analyst login is checked for real on a
  // server in test/server/analyst-role.test.ts (vitest project `server`)
  it('grants SELECT only; on chDB roles are unsupported and reported as such', async () => {
    const statements = analystRoleStatements('burnwatch')
    expect(statements).toEqual(['CREATE ROLE IF NOT EXISTS burnwatch_analyst', 'GRANT SELECT ON burnwatch.* TO burnwatch_analyst'])
    expect(() => analystRoleStatements(`x; ${SQL}`)).toThrow(/identifier/)
    const h = await openTestClickHouse(target)
    try {
      expect(h.kind).toBe('chdb')
      // honest: the embedded engine has no access storage, so there is no role to check
      const r = await ensureAnalystRole(h)
      expect(r.status).toBe('unsupported')
      await expect(h.client.command({ query: 'CREATE ROLE IF NOT EXISTS burnwatch_analyst_probe' })).rejects.toThrow()
    } finally {
      await h.close()
    }
  })
})

describe('user-supplied names reach ClickHouse only as parameters', () => {
  it('names with quotes, SQL and markup are stored verbatim and queried back', async () => {
    const h = await openTestClickHouse(target)
    try {
      const names = [SQL, `Robert'); DROP TABLE alerts;--`, '{team:String}', "a\\'b", '<!channel> `x`']
      const store = createClickHouseUsageStore(h.client, { stagingDir: h.stagingDir })
      await store.insertEvents(
        names.map((team, i) => ({
          event_id: `sec-${i}`, timestamp: Date.now(), team, endpoint: team, model: 'gpt-4o-mini', provider: '', service: '', deployment_id: team,
          input_tokens: 1, output_tokens: 1, cache_read_tokens: 0, cache_write_tokens: 0, reasoning_tokens: 0, environment: team, cost_input_usd: 0, cost_cache_read_usd: 0, cost_cache_write_usd: 0, cost_output_usd: 0, retry: false, batch: false, cost_usd: '0.000001000000', cost_source: 'reported', unpriced: false,
          gpu_seconds: 0, latency_ms: 0, status: 'ok', attributes: { note: team }, late: false, kafka_topic: 'sec', kafka_partition: 0, kafka_offset: i,
        })),
        'sec-token',
      )
      for (const team of names) {
        const rs = await h.client.query({ query: 'SELECT team, endpoint, attributes[\'note\'] AS note FROM usage_events WHERE team = {team:String}', query_params: { team }, format: 'JSONEachRow' })
        expect(await rs.json()).toEqual([{ team, endpoint: team, note: team }])
      }
      // the product's own parameterised paths: the checkpoint and the silences
      expect((await store.checkpoint('sec', 0)).maxOffset).toBe(names.length - 1)
      await addSilence(h.client, { team: SQL, endpoint: names[1]!, model: null, until: '1h', reason: names[4]!, createdBy: SQL })
      const s = (await listSilences(h.client)).find((x) => x.team === SQL)
      expect(s?.endpoint).toBe(names[1])
      const n = await h.client.query({ query: 'SELECT count() AS n FROM usage_events', format: 'JSONEachRow' })
      expect(Number((await n.json<{ n: number }>())[0]!.n)).toBe(names.length)
    } finally {
      await h.close()
    }
  })

  it('no SQL text in services/ or shared/ interpolates a value (static scan)', () => {
    const findings = scanSqlInterpolation()
    expect(findings, findings.join('\n')).toEqual([])
  })
})

/**
 * Interpolations in SQL-looking template literals that are known not to carry user input,
 * each with the reason. A new interpolation anywhere else fails the scan.
 */
const ALLOWED: Record<string, string> = {
  'services/aggregator/clickhouse-store.ts: cols': 'one of two literal column lists, chosen by a typed flag',
  "services/notifier/deliveries.ts: COLUMNS.map((c) => `argMax(${c}, delivered_at) AS last_${c}`).join(', ')": 'constant column names',
  "services/notifier/deliveries.ts: COLUMNS.map((c) => `last_${c} AS ${c}`).join(', ')": 'constant column names',
  'services/notifier/deliveries.ts: c': 'a constant column name (COLUMNS)',
  'services/notifier/deliveries.ts: where': 'literal SQL with {param} placeholders from this file',
  'services/notifier/deliveries.ts: inner': 'the subquery built above from constants',
  "services/notifier/deliveries.ts: outcome ? ` WHERE last_outcome = '${outcome}'` : ''": "typed literal 'delivered' | null",
  'services/notifier/deliveries.ts: outcome': "typed literal 'delivered'",
  "services/notifier/render.ts: where.join('\\n  AND ')": 'a query shown to humans in the page, never executed; names escaped by sqlStringLiteral',
  // the rollup repair's SQL is assembled from the constant ROLLUPS table in the same file
  'services/aggregator/reconcile.ts: keyExpr': 'constant key expression (ROLLUPS)',
  'services/aggregator/reconcile.ts: dims': 'constant key column list (ROLLUPS)',
  'services/dashboard/queries.ts: cols': 'a constant column list (COLUMNS), indexed by the typed Breakdown',
  'services/dashboard/queries.ts: GROUPS[by]': 'constant GROUP BY lists (GROUPS), indexed by the typed Breakdown',
  'services/dashboard/queries.ts: TABLES[by]': 'constant table names (TABLES), indexed by the typed Breakdown',
  'services/notifier/chart-data.ts: f.where': 'literal conditions with {param} placeholders (seriesFilter)',
  'services/aggregator/reconcile.ts: keyCol': 'constant key column (ROLLUPS)',
  'services/aggregator/reconcile.ts: r.table': 'constant table name (ROLLUPS)',
  'services/aggregator/clickhouse-store.ts: USAGE_COLUMN_LIST': 'the constant column list (USAGE_COLUMNS)',
  'services/aggregator/clickhouse-store.ts: INSERT_SETTINGS': 'constant settings',
  'services/aggregator/clickhouse-store.ts: dedupToken': 'checked against [\\w.:-]+ just above (topic characters and offsets); older servers take no query parameter in SETTINGS',
  "services/aggregator/reconcile.ts: cols.join(', ')": 'constant column names (ROLLUPS)',
  "services/aggregator/reconcile.ts: cols.map((c) => `${diff(c)} AS ${c}`).join(', ')": 'constant column names (ROLLUPS)',
  "services/aggregator/reconcile.ts: cols.map((c) => `${r.columns[c]} AS e_${c}`).join(', ')": 'constant aggregate expressions (ROLLUPS)',
  "services/aggregator/reconcile.ts: cols.map((c) => `${c === 'deployments' ? 'sumMap' : 'sum'}(${c}) AS w_${c}`).join(', ')": 'constant column names (ROLLUPS)',
  'services/aggregator/reconcile.ts: recent': 'literal SQL with a {since} parameter, built above from constants',
  "services/aggregator/reconcile.ts: reconcileQuery(rollup).replace(/^INSERT INTO [^\\n]+\\n/, '')": 'the repair query above, as a count',
}

const SQL_SHAPE = /\bSELECT\b[\s\S]*\bFROM\b|\bINSERT\s+INTO\b|\bCREATE\s+(TABLE|DATABASE|ROLE|USER|VIEW|MATERIALIZED)\b|\bALTER\s+TABLE\b|\bDROP\s+(TABLE|DATABASE|ROLE)\b|\bGRANT\s+\w+\s+ON\b|\bDELETE\s+FROM\b|\bWHERE\b/

function scanSqlInterpolation(): string[] {
  const files: string[] = []
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name)
      if (statSync(p).isDirectory()) walk(p)
      else if (p.endsWith('.ts')) files.push(p)
    }
  }
  walk(join(REPO_ROOT, 'services'))
  walk(join(REPO_ROOT, 'shared'))
  const findings: string[] = []
  for (const file of files) {
    const rel = relative(REPO_ROOT, file)
    const src = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true)
    // names bound to assertIdentifier(...): validated identifiers, safe to splice
    const identifiers = new Set<string>()
    const collect = (n: ts.Node) => {
      if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.initializer && ts.isCallExpression(n.initializer) && n.initializer.expression.getText(src) === 'assertIdentifier') identifiers.add(n.name.text)
      ts.forEachChild(n, collect)
    }
    collect(src)
    const visit = (n: ts.Node) => {
      if (ts.isTemplateExpression(n)) {
        const literal = [n.head.text, ...n.templateSpans.map((s) => s.literal.text)].join(' ')
        if (SQL_SHAPE.test(literal)) {
          for (const span of n.templateSpans) {
            const expr = span.expression.getText(src)
            if (identifiers.has(expr) || ALLOWED[`${rel}: ${expr}`]) continue
            const line = src.getLineAndCharacterOfPosition(span.expression.getStart(src)).line + 1
            findings.push(`${rel}:${line}: \${${expr}} interpolated into SQL text; pass it as a query parameter ({name:Type} + query_params)`)
          }
        }
      }
      ts.forEachChild(n, visit)
    }
    visit(src)
  }
  return findings
}
