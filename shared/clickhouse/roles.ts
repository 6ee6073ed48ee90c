/**
 * The analyst role (DESIGN.md "ClickHouse": an analyst role can read and not write).
 *
 * Not a numbered migration on purpose: GRANT needs the database name (ClickHouse resolves an
 * unqualified `ON *` to the current database at grant time, but `currentDatabase()` is not
 * allowed in GRANT, and the migrations are database-agnostic files), and access control
 * statements fail on chDB (its only user directory is the read-only users.xml: `CREATE ROLE`
 * answers code 497, "Not enough privileges"). A failing statement in a migration file would
 * stop `burnwatch migrate` and every start in embedded mode, so the role is applied by this
 * function, which reports what happened instead of failing the caller.
 */
import type { ClickHouseHandle } from './client.ts'
import { assertIdentifier } from './client.ts'

export const ANALYST_ROLE = 'burnwatch_analyst'

/** The idempotent statements that create the role and let it read every table of `database`. */
export function analystRoleStatements(database: string, role = ANALYST_ROLE): string[] {
  const db = assertIdentifier(database)
  const r = assertIdentifier(role, 'role name')
  return [`CREATE ROLE IF NOT EXISTS ${r}`, `GRANT SELECT ON ${db}.* TO ${r}`]
}

export type AnalystRoleResult =
  | { status: 'applied'; role: string; database: string; statements: string[] }
  /** the engine has no writable access storage (chDB): nothing was run */
  | { status: 'unsupported'; role: string; database: string; reason: string }
  /** a server that refused (the user lacks access management): nothing else was changed */
  | { status: 'forbidden'; role: string; database: string; reason: string; fix: string }

/**
 * Creates the analyst role with SELECT on the handle's database. Safe to call at every start:
 * both statements are idempotent (GRANT adds privileges only). Never throws for the two
 * expected refusals (chDB, a user without access management); other errors propagate.
 */
export async function ensureAnalystRole(h: Pick<ClickHouseHandle, 'client' | 'kind' | 'database'>, role = ANALYST_ROLE): Promise<AnalystRoleResult> {
  const statements = analystRoleStatements(h.database, role)
  if (h.kind === 'chdb') {
    return {
      status: 'unsupported',
      role,
      database: h.database,
      reason: 'unsupported on chDB: the in-process engine has no access control storage (CREATE ROLE is refused); embedded mode has no users to restrict',
    }
  }
  for (const query of statements) {
    try {
      await h.client.command({ query })
    } catch (err) {
      const code = (err as { code?: string }).code
      // 497 ACCESS_DENIED: the connecting user may not manage access
      if (code === '497') {
        return {
          status: 'forbidden',
          role,
          database: h.database,
          reason: (err as Error).message,
          fix: `connect as a user with access management (users.xml <access_management>1</access_management>, or CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT=1 in the official image) or have an administrator run: ${statements.join('; ')}`,
        }
      }
      throw err
    }
  }
  return { status: 'applied', role, database: h.database, statements }
}
