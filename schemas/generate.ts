/**
 * Writes the JSON Schema of each contract next to its zod schema, for producers in other
 * languages. `npm run schemas` regenerates; test/unit/schemas.test.ts fails when stale.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { jsonSchemas } from './json.ts'

const dir = fileURLToPath(new URL('.', import.meta.url))
for (const [file, schema] of Object.entries(jsonSchemas())) {
  writeFileSync(`${dir}${file}`, JSON.stringify(schema, null, 2) + '\n')
  console.log(`wrote schemas/${file}`)
}
