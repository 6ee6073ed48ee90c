/**
 * Prints one plain closing line, `N passed, N failed, N skipped`, as the very last line of the
 * run (after vitest's own summary), for tools that read a run's closing line.
 */
import { writeSync } from 'node:fs'
import type { Reporter, TestModule } from 'vitest/node'

export default class SummaryReporter implements Reporter {
  onTestRunEnd(modules: ReadonlyArray<TestModule>): void {
    let passed = 0
    let failed = 0
    let skipped = 0
    for (const m of modules) {
      const tests = [...m.children.allTests()]
      for (const t of tests) {
        const state = t.result().state
        if (state === 'passed') passed++
        else if (state === 'failed') failed++
        else skipped++
      }
      // a file that failed to load has no tests but is a failure
      if (m.state() === 'failed' && tests.length === 0) failed++
    }
    process.once('exit', () => writeSync(1, `\n${passed} passed, ${failed} failed, ${skipped} skipped\n`))
  }
}
