/** Deployment marker v1 (topic `deployments`, HTTP `POST /v1/deployments`). */
import { z } from 'zod'
import { isoTimestamp, typeError } from './usage-event.ts'

const str = (field: string, max: number) =>
  z.string({ error: typeError(field, `a string of 1–${max} characters`) }).min(1, { error: `${field} must not be empty` }).max(max, { error: `${field} is longer than ${max} characters` })

export const DeploymentMarker = z.strictObject({
  deployment_id: str('deployment_id', 128),
  team: str('team', 128),
  service: str('service', 128),
  timestamp: isoTimestamp('timestamp'),
  endpoint: str('endpoint', 256).optional(),
  version: str('version', 128).optional(),
  commit: str('commit', 64).optional(),
  url: z.url({ error: 'url must be an absolute URL' }).max(2048).optional(),
})
export type DeploymentMarker = z.infer<typeof DeploymentMarker>

/** A row of the `deployments` table as read back (JSONEachRow): every field present, the optional ones null when absent. */
export type DeploymentTableRow = { [K in keyof DeploymentMarker]-?: undefined extends DeploymentMarker[K] ? Exclude<DeploymentMarker[K], undefined> | null : DeploymentMarker[K] }
