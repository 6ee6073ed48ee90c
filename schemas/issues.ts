/** Turns zod issues into the error shape of the ingest API: one entry per problem, naming the field. */
import type { z } from 'zod'

export interface FieldError {
  /** dotted path of the field, e.g. `attributes.tier`; `(root)` for the whole item */
  path: string
  message: string
}

export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((i) => {
    const path = i.path.length ? i.path.map(String).join('.') : '(root)'
    if (i.code === 'unrecognized_keys') {
      return { path: i.keys.join(','), message: `unknown field(s) ${i.keys.map((k) => `'${k}'`).join(', ')}: remove them, or send in lenient mode` }
    }
    return { path, message: i.message }
  })
}

export function describeIssues(error: z.ZodError): string {
  return fieldErrors(error)
    .map((e) => `${e.path}: ${e.message}`)
    .join('; ')
}
