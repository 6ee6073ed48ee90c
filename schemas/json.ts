import { z } from 'zod'
import { UsageEventStrict } from './usage-event.ts'
import { DeploymentMarker } from './deployment.ts'
import { WindowRecord } from './window.ts'
import { AlertRecord } from './alert.ts'

const gen = (id: string, title: string, s: z.ZodType) => ({
  $id: `https://burnwatch.dev/schemas/${id}`,
  title,
  ...z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }),
})

/** file name → JSON Schema, as committed in schemas/ */
export function jsonSchemas(): Record<string, unknown> {
  return {
    'usage-event.v1.schema.json': gen('usage-event.v1.schema.json', 'Burnwatch usage event v1', UsageEventStrict),
    'deployment-marker.v1.schema.json': gen('deployment-marker.v1.schema.json', 'Burnwatch deployment marker v1', DeploymentMarker),
    'cost-window.v1.schema.json': gen('cost-window.v1.schema.json', 'Burnwatch cost window record v1', WindowRecord),
    'alert.v1.schema.json': gen('alert.v1.schema.json', 'Burnwatch alert record v1', AlertRecord),
  }
}
