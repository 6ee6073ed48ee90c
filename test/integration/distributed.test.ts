/**
 * The distributed mode: ingest, aggregator, detector and notifier each as its own process
 * (`burnwatch <stage>`) on the real Kafka broker, Slack through the real WebClient against the
 * loopback fake; a regression sent over HTTP ends as a page in the team's channel.
 * On the embedded path each process has its own chDB; the `server` project runs this file with
 * the four processes sharing one ClickHouse server over HTTP.
 */
import { afterAll, describe, expect, inject, it } from 'vitest'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startBurnwatch, type Child } from '../support/processes.ts'
import { startFakeSlack, type FakeSlack } from '../support/fake-slack.ts'
import { freePort, uniquePrefix, waitFor } from '../support/pipeline.ts'
import { generateTraffic, DEMO_SERIES } from '../../services/demo/traffic.ts'
import { replay } from '../../services/cli/replay.ts'

const children: Child[] = []
let slack: FakeSlack | null = null
afterAll(async () => {
  for (const c of children) c.kill('SIGKILL')
  await slack?.close()
})


describe('distributed mode: one process per stage on the real broker', () => {
  it('pages the owning team end to end', { timeout: 240_000 }, async () => {
    slack = await startFakeSlack({ channels: ['#search-oncall', '#ai-spend'] })
    const dir = mkdtempSync(join(tmpdir(), 'bw-dist-'))
    const configPath = join(dir, 'burnwatch.yaml')
    writeFileSync(configPath, `teams:\n  - name: search\n    slack_channel: "#search-oncall"\n    mention: "<!subteam^S0SEARCH>"\ndeployment_url_template: "https://deploys.example.com/{deployment_id}"\n`)
    const target = inject('clickhouse')
    const port = await freePort()
    const common = {
      KAFKA_BROKERS: inject('kafkaBrokers').join(','),
      KAFKA_TOPIC_PREFIX: uniquePrefix(),
      BURNWATCH_CONFIG: configPath,
      LOG_LEVEL: 'warn',
      ...(target.url ? { CLICKHOUSE_URL: target.url, CLICKHOUSE_USER: target.user, CLICKHOUSE_PASSWORD: target.password, CLICKHOUSE_DATABASE: `dist_${port}` } : {}),
    }
    const stage = (name: string, extra: Record<string, string> = {}) => {
      const c = startBurnwatch([name], { ...common, BURNWATCH_DATA_DIR: join(dir, name), ...extra })
      children.push(c)
      return c
    }
    const notify = stage('notify', { SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url })
    const detect = stage('detect')
    const metricsPort = await freePort()
    const aggregate = stage('aggregate', { METRICS_PORT: String(metricsPort) })
    const ingest = stage('ingest', { PORT: String(port) })
    await waitFor('all four stages running', () => children.every((c) => /running/.test(c.output())), 90_000).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${children.map((c) => c.output().slice(-1500)).join('\n---\n')}`)
    })

    const minutes = 240
    const start = Math.floor(Date.now() / 60_000) * 60_000 - (minutes + 5) * 60_000
    const file = join(dir, 'traffic.ndjson')
    writeFileSync(file, [...generateTraffic({ start, minutes, series: DEMO_SERIES, seed: 9, regression: { team: 'search', endpoint: 'POST /v1/summarize', at: start + 180 * 60_000, deployment_id: 'search-api-9d1e', outputFactor: 1.6 } })].map((e) => JSON.stringify(e)).join('\n') + '\n')
    const r = await replay({ eventsPath: file, url: `http://127.0.0.1:${port}`, rate: 0, batchSize: 1000 })
    expect(r.rejected).toBe(0)

    const channel = slack.channelId('#search-oncall')
    const page = await waitFor('a page in #search-oncall', () => slack!.posts(channel).find((m) => m.text.includes('search-api-9d1e') || JSON.stringify(m.blocks).includes('search-api-9d1e')), 120_000).catch((e: unknown) => {
      throw new Error(`${String(e)}\n${children.map((c) => c.output().slice(-1500)).join('\n---\n')}`)
    })
    expect(JSON.stringify(page.blocks)).toContain('https://deploys.example.com/search-api-9d1e')
    expect(page.text).toContain('S0SEARCH')
    // exactly one page for that break
    expect(slack.posts(channel).filter((m) => m.text.includes('POST /v1/summarize')).length).toBe(1)

    // the aggregator process serves its own metrics
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text()
    expect(metrics).toMatch(/burnwatch_aggregator_records_total\{outcome="stored"\} [1-9]/)
    expect(metrics).toMatch(/burnwatch_clickhouse_insert_seconds_count\{table="usage_events"\} [1-9]/)

    for (const c of [ingest, aggregate, detect, notify]) c.kill('SIGTERM')
    expect(await Promise.all([ingest, aggregate, detect, notify].map((c) => c.exited))).toEqual([0, 0, 0, 0])
  })
})
