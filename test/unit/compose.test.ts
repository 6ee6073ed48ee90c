import { describe, expect, it } from 'vitest'
import { readFileSync } from 'node:fs'
import { parse } from 'yaml'
import { parseConfigFile } from '../../shared/config.ts'

const compose = parse(readFileSync(new URL('../../docker-compose.yml', import.meta.url), 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; build?: unknown; ports?: string[]; command?: string[]; environment?: Record<string, unknown>; healthcheck?: unknown }>
}

describe('docker-compose.yml', () => {
  it('defines Kafka (KRaft) and ClickHouse with their ports and health checks', () => {
    const kafka = compose.services.kafka!
    expect(kafka.image).toMatch(/^apache\/kafka:/)
    expect(kafka.environment?.KAFKA_PROCESS_ROLES).toBe('broker,controller')
    expect(kafka.ports).toContain('9092:9092')
    expect(kafka.healthcheck).toBeDefined()
    const ch = compose.services.clickhouse!
    expect(ch.image).toMatch(/^clickhouse\/clickhouse-server:/)
    expect(ch.ports).toContain('8123:8123')
    expect(ch.healthcheck).toBeDefined()
  })

  it('runs the four stages from one image against Kafka and ClickHouse', () => {
    const stages = { ingest: 'ingest', aggregator: 'aggregate', detector: 'detect', notifier: 'notify' }
    for (const [svc, cmd] of Object.entries(stages)) {
      const s = compose.services[svc]!
      expect(s, svc).toBeDefined()
      expect(s.image).toBe('burnwatch:local')
      expect(s.command).toEqual([cmd])
      expect(s.environment?.KAFKA_BROKERS).toBe('kafka:9092')
      expect(s.environment?.CLICKHOUSE_URL).toBe('http://clickhouse:8123')
    }
    expect(compose.services.ingest!.ports).toContain('8787:8787')
  })

  it('serves the dashboard with a read-only login created by the ClickHouse init script', () => {
    const ui = compose.services.ui!
    expect(ui.command).toEqual(['ui'])
    expect(ui.ports).toContain('8788:8788')
    expect(ui.environment?.CLICKHOUSE_USER).toBe('burnwatch_ui')
    const init = readFileSync(new URL('../../infra/clickhouse/init/dashboard-user.sh', import.meta.url), 'utf8')
    expect(init).toContain('CREATE USER IF NOT EXISTS burnwatch_ui')
    expect(init).toMatch(/GRANT SELECT ON \$\{CLICKHOUSE_DB\}\.\* TO burnwatch_ui;/)
    expect(init).not.toMatch(/GRANT (ALL|INSERT|ALTER|CREATE)/)
  })

  it('ships a config that the config parser accepts', () => {
    const cfg = parseConfigFile(readFileSync(new URL('../../infra/config/burnwatch.yaml', import.meta.url), 'utf8'))
    expect(cfg.teams[0]?.name).toBe('search')
  })
})
