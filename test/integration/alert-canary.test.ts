/**
 * An alert paged by the canary comparison keeps its canary details on the way through ClickHouse:
 * the detector's insert (alerts.canary, migration 042), the dashboard's read and its alert page.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { openTestClickHouse } from '../support/clickhouse.ts'
import { makeAlert } from '../support/alerts.ts'
import type { ClickHouseHandle } from '../../shared/clickhouse/client.ts'
import { ConfigFileSchema } from '../../shared/config.ts'
import { createClickHouseAlertStore } from '../../services/detector/clickhouse-store.ts'
import { loadAlert } from '../../services/dashboard/queries.ts'
import { renderAlert } from '../../services/dashboard/views.ts'

let ch: ClickHouseHandle
beforeAll(async () => {
  ch = await openTestClickHouse(inject('clickhouse'))
})
afterAll(async () => {
  await ch?.close()
})

describe('canary details in the alerts table', () => {
  it('stored by the detector, read back by the dashboard, shown on the alert page; absent on other alerts', async () => {
    const canary = { deployment_id: 'r778', compared_with: 'r777', traffic_pct: 12.3, change_pct: 45.2 }
    const store = createClickHouseAlertStore(ch.client)
    await store.insertAlerts([makeAlert({ alert_id: 'canary-1', canary, deployment_ids: ['r778'] }), makeAlert({ alert_id: 'plain-1' })])
    const [a] = await loadAlert(ch.client, 'canary-1')
    expect(a?.canary).toEqual(canary)
    const [p] = await loadAlert(ch.client, 'plain-1')
    expect(p).toBeDefined()
    expect(p!.canary).toBeUndefined()
    const page = await renderAlert({ client: ch.client, file: ConfigFileSchema.parse({}), now: Date.parse('2026-11-22T11:00:00Z') }, 'canary-1')
    expect(String(page?.body)).toContain('caught in canary: <code>r778</code>, 12.3% of traffic, <strong>+45%</strong> per request')
    const plain = await renderAlert({ client: ch.client, file: ConfigFileSchema.parse({}), now: Date.parse('2026-11-22T11:00:00Z') }, 'plain-1')
    expect(String(plain?.body)).not.toContain('caught in canary')
  })
})
