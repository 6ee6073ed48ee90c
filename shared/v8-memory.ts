/**
 * How a process that runs the detector asks V8 to size its heap: for memory, not for throughput.
 *
 * The detector holds state for days and turns it over all the time (it reads cold endpoint cells
 * back and writes them out again every minute). With V8's defaults, the old generation
 * grows to several times the live state before a full GC runs, and the pages that GC frees stay
 * in V8's page pool and the C allocator's heap: at 20,000 series the process kept ~330 MB of RSS
 * for ~40 MB of live state (`npm run bench`, part 4). V8's `--optimize-for-size` makes every full
 * GC a memory-reducing one (pooled pages are given back, the heap grows by smaller factors, the
 * young generation is kept small): RSS then follows the live state, for CPU: in the same bench
 * a cold window takes ~1.3–2× as long, and in `BENCH_ONLY=drain` the aggregator drains about
 * half as many events per second (42–44k against 93k; the bare consumer 250k against 660k).
 * So only processes that run the `detect` stage set it (`burnwatch detect`, and `burnwatch
 * start`, where every stage shares the process); `aggregate`, `ingest`, `notify` and `ui` alone
 * keep V8's defaults and their throughput.
 *
 * It is set at run time, once, before the stages allocate their state: `node --optimize-for-size`
 * cannot go in NODE_OPTIONS (not on Node's allow list) and `npx burnwatch` takes no node flags.
 * Set at run time the flag changes the GC's decisions, which V8 reads at each collection; the
 * young generation's maximum, fixed when the heap was made, stays (the flag on the command line
 * would also cap it at 1 MB, which slows the stages down much more for little more memory).
 * BURNWATCH_V8_FAVOR_MEMORY=0 (AppConfig.v8FavorMemory) keeps V8's defaults: more memory, less
 * CPU. The same variable governs the other half, glibc's malloc arenas, capped by bin/burnwatch.js
 * for `start` and `detect` (it must be set before the process starts). One-shot commands (backtest, eval, reports) do not call this: they want throughput and exit.
 * The flag is process-wide and cannot be taken back: the first call decides.
 */
import { setFlagsFromString } from 'node:v8'

let applied = false

/** Sets V8's --optimize-for-size for this process when `on` (once); returns whether it is set. */
export function favorMemory(on: boolean): boolean {
  if (on && !applied) {
    setFlagsFromString('--optimize-for-size')
    applied = true
  }
  return applied
}
