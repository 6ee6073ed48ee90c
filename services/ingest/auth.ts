/**
 * Ingest keys: `Authorization: Bearer KEY`, compared in constant time over SHA-256 digests
 * (every configured key is compared, so timing says nothing about which or how many matched).
 * A key writes only for the teams it is bound to. Messages never echo the key.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { IngestKey } from '../../shared/config.ts'
import { HttpError } from './http-error.ts'

export interface Principal {
  /** the environment variable that holds the key: names the key in logs without revealing it */
  keyEnv: string
  teams: ReadonlySet<string>
}

/** Returns null when no keys are configured (open ingest); throws 401 otherwise on a bad header. */
export type Authenticate = (authorization: string | undefined) => Principal | null

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest()

function unauthorized(message: string): HttpError {
  return new HttpError(401, 'unauthorized', message, { reason: 'unauthorized', headers: { 'www-authenticate': 'Bearer realm="burnwatch-ingest"' } })
}

export function createAuthenticator(keys: readonly IngestKey[]): Authenticate {
  if (!keys.length) return () => null
  const known = keys.map((k) => ({ hash: digest(k.key), principal: { keyEnv: k.keyEnv, teams: new Set(k.teams) } }))
  return (authorization) => {
    if (!authorization) throw unauthorized('This API requires an ingest key: send the header `Authorization: Bearer <key>`.')
    const m = /^Bearer[ ]+(\S+)\s*$/i.exec(authorization)
    if (!m) throw unauthorized('The Authorization header must have the form `Bearer <key>`.')
    const presented = digest(m[1]!)
    let found: Principal | null = null
    for (const k of known) {
      if (timingSafeEqual(presented, k.hash) && !found) found = k.principal
    }
    if (!found) throw unauthorized('The ingest key is not recognised. Check the key configured for your team (ingest_keys in the Burnwatch config).')
    return found
  }
}

/** 403 naming each item written for a team the key is not bound to. */
export function checkTeams(principal: Principal | null, items: readonly { team: string }[], noun = 'events'): void {
  if (!principal) return
  const offending: { index: number; team: string }[] = []
  items.forEach((item, index) => {
    if (!principal.teams.has(item.team)) offending.push({ index, team: item.team })
  })
  if (!offending.length) return
  const first = offending[0]!
  const allowed = [...principal.teams].join(', ')
  throw new HttpError(
    403,
    'forbidden_team',
    `This ingest key (${principal.keyEnv}) may only write ${noun} for team(s) ${allowed}; item ${first.index} is for team '${first.team}'${offending.length > 1 ? ` (and ${offending.length - 1} more item(s))` : ''}. Nothing was accepted.`,
    { reason: 'forbidden', items: items.length, invalid: offending.length, extra: { errors: offending.slice(0, 1000).map((o) => ({ index: o.index, path: 'team', message: `team '${o.team}' is not allowed for this key` })) } },
  )
}
