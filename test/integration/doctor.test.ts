import { describe, expect, inject, it } from 'vitest'
import { testClickHouseEnv } from '../support/clickhouse.ts'
import { startFakeSlack } from '../support/fake-slack.ts'
import { runCli } from '../support/pipeline.ts'


describe('burnwatch doctor', () => {
  it('says all is well against the real broker, engine and a Slack API', async () => {
    const slack = await startFakeSlack()
    try {
      const r = await runCli(['doctor'], { ...testClickHouseEnv(inject('clickhouse')), KAFKA_BROKERS: inject('kafkaBrokers').join(','), SLACK_BOT_TOKEN: slack.token, SLACK_API_URL: slack.url })
      expect(r.text).toMatch(/ok {3}Kafka: 1 broker\(s\)/)
      expect(r.text).toMatch(/ok {3}ClickHouse: .*version \d+\./)
      expect(r.text).toMatch(/ok {3}Slack: authenticated/)
      expect(r.code).toBe(0)
    } finally {
      await slack.close()
    }
  })

  it('says what is wrong and how to fix it, without leaking secrets', async () => {
    const r = await runCli(['doctor'], { ...testClickHouseEnv(inject('clickhouse')), KAFKA_BROKERS: '127.0.0.1:1', SLACK_BOT_TOKEN: 'xoxb-doctor-secret-0000', SLACK_API_URL: 'http://127.0.0.1:1/api/' })
    expect(r.code).toBe(1)
    expect(r.text).toMatch(/FAIL Kafka: cannot reach Kafka at 127\.0\.0\.1:1/)
    expect(r.text).toMatch(/fix: check KAFKA_BROKERS/)
    expect(r.text).toMatch(/FAIL Slack/)
    expect(r.text).not.toContain('xoxb-doctor-secret-0000')
  })

  it('lists every configuration problem at once', async () => {
    const r = await runCli(['doctor'], { PORT: 'eighty', CLICKHOUSE_URL: 'not-a-url' })
    expect(r.code).toBe(1)
    expect(r.text).toMatch(/PORT must be a port number/)
    expect(r.text).toMatch(/CLICKHOUSE_URL must be a URL/)
  })
})
