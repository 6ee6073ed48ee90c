/**
 * Pure detection core (no I/O, no clock): fed closed windows and deployment markers in event
 * time, returns alert state changes. The live detector service and the backtest both use it.
 *
 * Windows of one series must arrive in order; windows of different series may interleave in
 * any way (several partitions, a replay running one partition ahead): the alerts are the same
 * as for global event-time order as long as no series lags another of its team (or, for teams
 * whose members all went quiet, any series) by more than TEAM_MAX_SKEW_WINDOWS of event time.
 * Only the call that returns a team alert may differ. Endpoint rollups (an endpoint across its
 * models) hold back at most ENDPOINT_MAX_SKEW_WINDOWS and take a new model from its first
 * window: their alerts are the same when the series of one endpoint lag each other by less than
 * that, and a new model's first windows are not more than TEAM_FINALIZE_LAG_WINDOWS behind. Deployment markers are kept by their
 * timestamps; a marker counts for an alert if it arrived before the alert was built.
 */
import type { AlertRecord } from '../../../schemas/alert.ts'
import type { DeploymentMarker } from '../../../schemas/deployment.ts'
import type { WindowRecord } from '../../../schemas/window.ts'
import { seriesId } from '../../../schemas/series.ts'
import { thresholdFor, type DetectorConfig } from './config.ts'
import { KeyTracker, type KeyWindow } from './key.ts'
import { ENDPOINT_MAX_SKEW_WINDOWS, IDLE_EVICT_MS, MAX_GAP_FILL_WINDOWS, TEAM_FINALIZE_LAG_WINDOWS, TEAM_MAX_SKEW_WINDOWS } from './params.ts'
import { newMember, TeamState, type Member } from './team.ts'
import { decodeSnapshot, encodeSnapshot, type View } from './snapshot.ts'
import { BufferPool, DEFAULT_HOT_ENDPOINTS, freeOwnedBytes, type CellHandle, type CellStore } from './cells.ts'
import { toMs } from './time.ts'

export { defaultDetectorConfig, type DetectorConfig, type DetectorTeamConfig } from './config.ts'
export { createMemoryCellStore, DEFAULT_HOT_ENDPOINTS, type CellHandle, type CellStore } from './cells.ts'

export interface DetectorCore {
  /** Feed one closed window; returns the alert state changes it produced. Redelivered or older windows of a series are ignored. */
  onWindow(w: WindowRecord): AlertRecord[]
  onDeployment(m: DeploymentMarker): void
  /** End of input (backtest, replay): finalizes every pending team minute up to the newest window; returns any alerts. */
  flush(): AlertRecord[]
  /** Keys held: series, endpoint rollups and teams (series and endpoints idle for IDLE_EVICT_MS leave). */
  size(): { series: number; endpoints: number; teams: number }
  /** Endpoint cells in memory and in the cell store, and how often they were read back and written. */
  cellStats(): { hot: number; cold: number; reads: number; writes: number }
}

/** A series' own state, kept with its endpoint rollup. */
interface SeriesState {
  key: KeyTracker
  /** the series as a member of its endpoint rollup */
  groupMember: Member
}

/**
 * An endpoint rollup (an endpoint across its models, per environment) and its series: the unit
 * of detector state that leaves the heap while cold (see CellStore). Nothing in it refers to state
 * outside it but the team's deployment markers, which are put back when it is read.
 */
interface Cell {
  group: TeamState
  series: Map<string, SeriesState>
}

/**
 * Always in memory: where a cell is, and what the core reads of it without reading it back. It is
 * its own CellHandle (where the store keeps its bytes; cap 0 until first written): one object a
 * cell rather than two, as 20,000 endpoints make 20,000 of each (`npm run bench`).
 */
interface CellRef extends CellHandle {
  team: TeamState
  live: Cell | null
  /** the buffer a cell in memory was read into (its typed arrays are views of it) */
  buf: Uint8Array | null
  /** mirrors of the rollup's nextT, hasPending() and open cost-per-request alert */
  nextT: number | null
  pending: boolean
  open: boolean
}

/**
 * Always in memory: a series' cell, and mirrors of its open alerts. It is also the series'
 * membership of its team (Member: its lastT, the start of its newest window, is the one the core
 * checks redelivery against): one object a series rather than two.
 */
interface SeriesRef extends Member {
  cell: CellRef
  open: boolean
}

interface Series {
  key: KeyTracker
  team: TeamState
  member: Member
  group: TeamState
  groupMember: Member
}

/** The team's markers stay shared with the team: not copied into a cell's bytes, put back when read. */
const cellExternals = (c: Cell): [object, string][] => [
  [c.group, 'markers'],
  [c.group.seriesCtx, 'markers'],
  [c.group.teamCtx, 'markers'],
]

export function createDetectorCore(config: DetectorConfig): DetectorCore {
  const windowMs = config.windowMs
  const teamConfigs = new Map(config.teams.map((t) => [t.name, t]))
  const series = new Map<string, SeriesRef>()
  const teams = new Map<string, TeamState>()
  /** endpoint rollups and their series, by team, endpoint and environment */
  const cells = new Map<string, CellRef>()
  const store = config.cellStore ?? null
  const hotLimit = store ? Math.max(1, config.hotEndpoints ?? DEFAULT_HOT_ENDPOINTS) : Infinity
  /** cells in memory, least recently used first */
  const hot = new Set<CellRef>()
  const pool = new BufferPool()
  const stats = { reads: 0, writes: 0 }
  /** newest window start of any series */
  let maxT = -Infinity

  function teamState(name: string): TeamState {
    let t = teams.get(name)
    if (!t) {
      const tc = teamConfigs.get(name)
      t = new TeamState(
        name,
        {
          windowMs,
          minRequests: config.minRequestsPerWindow,
          resolveWindows: config.resolveWindows,
          thrCpr: thresholdFor(config, tc, 'cost_per_request'),
          thrBurn: thresholdFor(config, tc, 'burn_rate'),
        },
        tc?.monthlyBudgetUsd,
      )
      teams.set(name, t)
    }
    return t
  }

  function cellRef(team: TeamState, endpoint: string, environment: string | undefined): CellRef {
    const id = JSON.stringify([team.name, endpoint, environment ?? 'production'])
    let ref = cells.get(id)
    if (!ref) {
      const { windowMs: wm, minRequests, resolveWindows, thrCpr, thrBurn } = team.seriesCtx
      const group = new TeamState(team.name, { windowMs: wm, minRequests, resolveWindows, thrCpr, thrBurn }, undefined, { name: endpoint, markers: team.markers })
      ref = { team, live: { group, series: new Map() }, buf: null, off: 0, cap: 0, len: 0, nextT: null, pending: false, open: false }
      cells.set(id, ref)
      hot.add(ref)
    }
    return ref
  }

  /** The cell in memory (read back from the store when cold), marked most recently used. */
  function live(ref: CellRef): Cell {
    let c = ref.live
    if (c) {
      hot.delete(ref)
      hot.add(ref)
      return c
    }
    const m = ref.team.markers
    const buf = pool.take(ref.len)
    ;(store as CellStore).get(ref, buf)
    c = decodeSnapshot<Cell>(buf.subarray(0, ref.len), [m, m, m])
    stats.reads++
    ref.live = c
    ref.buf = buf
    hot.add(ref)
    return c
  }

  /** The cell's objects are dropped: its buffer can take another cell. */
  function release(ref: CellRef): void {
    if (ref.buf) pool.give(ref.buf)
    ref.buf = null
  }

  function mirror(ref: CellRef, c: Cell): void {
    ref.nextT = c.group.nextT
    ref.pending = c.group.hasPending()
    ref.open = c.group.key.cprAlert !== null
  }

  /** typed arrays of the cell being written out (reused) */
  const written: View[] = []

  /**
   * Writes the least recently used cells to the store until at most hotEndpoints stay in memory.
   * Their objects are dropped, and the bytes of typed arrays they own (new series, grown rings:
   * not views of the buffer they were read into) are freed at once (freeOwnedBytes).
   */
  function trim(): void {
    if (!store) return
    for (const ref of hot) {
      if (hot.size <= hotLimit) break
      const c = ref.live as Cell
      written.length = 0 // (a write that threw leaves the arrays of a cell still in memory here)
      store.put(encodeSnapshot(c, cellExternals(c), written), ref)
      stats.writes++
      ref.live = null
      release(ref)
      hot.delete(ref)
      for (const a of written) freeOwnedBytes(a)
      written.length = 0
    }
  }

  /** Processes one window of a series, reporting its cost-per-request alert opening/closing to the team at that window's time. */
  function step(s: Series, kw: KeyWindow, out: AlertRecord[]): void {
    const wasOpen = s.key.cprAlert !== null
    s.key.process(kw, s.team.seriesCtx, out)
    const isOpen = s.key.cprAlert !== null
    if (isOpen !== wasOpen) {
      s.team.memberCpr(s.member, kw.t, isOpen ? 1 : -1)
      s.group.memberCpr(s.groupMember, kw.t, isOpen ? 1 : -1)
    }
  }

  /** Drops series silent for IDLE_EVICT_MS of event time (unless an alert of theirs is open), and endpoint rollups left without series. */
  function evictIdle(): void {
    const before = maxT - IDLE_EVICT_MS
    const inUse = new Set<CellRef>()
    for (const [id, s] of series) {
      if (s.lastT < before && !s.open) {
        series.delete(id)
        live(s.cell).series.delete(id)
        trim()
      } else inUse.add(s.cell)
    }
    for (const [id, ref] of cells) {
      if (inUse.has(ref) || ref.open || ref.pending) continue
      cells.delete(id)
      hot.delete(ref)
      ref.live = null
      release(ref)
      if (ref.cap > 0 && store) store.free(ref)
    }
  }

  /** Finalizes an endpoint rollup up to `until`. */
  function finalizeCell(ref: CellRef, until: number, out: AlertRecord[]): void {
    const c = live(ref)
    c.group.finalize(until, out)
    mirror(ref, c)
    trim()
  }

  return {
    onWindow(w) {
      const t = toMs(w.window_start)
      const id = seriesId(w)
      let ref = series.get(id)
      let cell: Cell
      if (!ref) {
        const team = teamState(w.team)
        const cr = cellRef(team, w.endpoint, w.environment)
        cell = live(cr)
        const key = new KeyTracker(w.team, w.endpoint, w.model)
        key.endpointRing = cell.group.key.ring
        cell.series.set(id, { key, groupMember: newMember() })
        // newMember()'s fields, in a literal (one hidden class for every series)
        ref = { lastT: -Infinity, joinAt: Infinity, heapIdx: -1, cprCounted: false, cell: cr, open: false }
        series.set(id, ref)
      } else {
        if (t <= ref.lastT) return []
        cell = live(ref.cell)
      }
      const own = cell.series.get(id) as SeriesState
      const key = own.key
      const out: AlertRecord[] = []
      const team = ref.cell.team
      const group = cell.group
      const s: Series = { key, team, member: ref, group, groupMember: own.groupMember }
      team.memberWindow(s.member, t)
      group.memberWindow(s.groupMember, t)
      if (Number.isFinite(key.lastT)) {
        const missing = Math.round((t - key.lastT) / windowMs) - 1
        if (missing > MAX_GAP_FILL_WINDOWS) key.restartEvidence()
        else {
          // a gap while a sibling series of the endpoint carried on: the traffic was elsewhere
          if (missing > 0 && group.othersActiveAfter(s.groupMember, key.lastT)) key.markMoved(key.lastT + windowMs, t)
          for (let m = 1; m <= missing; m++) {
            const tm = key.lastT + windowMs
            step(s, { t: tm, n: 0, c: 0, q: 0, i: 0, o: 0, k: 0, e: 0, deps: null }, out)
            if (key.burnForTeam > 0) team.add(s.member, tm, null, { xc: 0, xv: 0, bx: key.burnForTeam, bxv: key.burnVarForTeam })
            group.add(s.groupMember, tm, null, { xc: 0, xv: 0, bx: 0, bxv: 0 })
          }
        }
      }
      const { requests: n, cost_usd: c, cost_sq_sum: q } = w
      step(
        s,
        {
          t,
          n,
          c,
          q,
          i: w.input_tokens,
          o: w.output_tokens,
          k: w.cache_read_tokens,
          e: w.errors,
          kw: w.cache_write_tokens,
          // cost by token component (absent in windows stored before they existed: drivers then use catalog rates)
          cu: w.cost_input_usd ?? 0,
          cr: w.cost_cache_read_usd ?? 0,
          cw: w.cost_cache_write_usd ?? 0,
          co: w.cost_output_usd ?? 0,
          // retries (absent in windows stored before migration 043)
          r: w.retries ?? 0,
          deps: w.deployments,
          depCost: w.deployment_costs ?? null,
          depSq: w.deployment_cost_sq ?? null,
        },
        out,
      )
      const x = key.expectation(n, c, q)
      team.add(s.member, t, w, { xc: x.xc, xv: x.xv, bx: key.burnForTeam, bxv: key.burnVarForTeam })
      group.add(s.groupMember, t, w, { xc: 0, xv: 0, bx: 0, bxv: 0 })
      group.finalize(group.readyUntil(), out)
      ref.open = key.cprAlert !== null || key.burnAlert !== null
      mirror(ref.cell, cell)
      team.finalize(team.readyUntil(), out)
      if (t > maxT) {
        const prevMinute = Math.floor(maxT / windowMs)
        maxT = t
        // every team is final TEAM_MAX_SKEW_WINDOWS + lag behind the newest window of any series
        // (a team whose members all went quiet still advances); once per minute of event time
        if (Math.floor(t / 3_600_000) !== Math.floor(prevMinute * windowMs / 3_600_000)) evictIdle()
        if (Math.floor(t / windowMs) !== prevMinute) {
          const until = maxT - (TEAM_MAX_SKEW_WINDOWS + TEAM_FINALIZE_LAG_WINDOWS) * windowMs
          const untilGroup = maxT - (ENDPOINT_MAX_SKEW_WINDOWS + TEAM_FINALIZE_LAG_WINDOWS) * windowMs
          for (const g of cells.values()) if (g.nextT === null ? g.pending : g.nextT <= untilGroup) finalizeCell(g, untilGroup, out)
          for (const tm of teams.values()) if (tm.nextT === null ? tm.hasPending() : tm.nextT <= until) tm.finalize(until, out)
        }
      }
      trim()
      return out
    },

    onDeployment(m) {
      teamState(m.team).addMarker({ id: m.deployment_id, t: toMs(m.timestamp), endpoint: m.endpoint })
    },

    size() {
      return { series: series.size, endpoints: cells.size, teams: teams.size }
    },

    cellStats() {
      return { hot: hot.size, cold: cells.size - hot.size, reads: stats.reads, writes: stats.writes }
    },

    flush() {
      const out: AlertRecord[] = []
      if (Number.isFinite(maxT)) {
        for (const g of cells.values()) finalizeCell(g, maxT, out)
        for (const t of teams.values()) t.finalize(maxT, out)
      }
      return out
    },
  }
}
