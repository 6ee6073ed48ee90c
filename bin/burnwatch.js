#!/usr/bin/env node
// The `burnwatch` executable as `npm start` and `npx burnwatch` run it. Plain JavaScript on
// purpose: Burnwatch runs its TypeScript sources directly, which Node.js older than 22.18 cannot
// do (it fails with ERR_UNKNOWN_FILE_EXTENSION and no word of why), so this file checks the
// version first, in syntax any Node.js still in use can parse, and says what to do.
var REQUIRED = [22, 18]
var parts = process.versions.node.split('.').map(Number)
var major = parts[0]
var minor = parts[1]
var ok = major > 23 || (major === 23 && minor >= 6) || (major === REQUIRED[0] && minor >= REQUIRED[1])

if (!ok) {
  var pkg = 'node-' + process.platform + '-' + process.arch + '@24'
  process.stderr.write(
    [
      'burnwatch needs Node.js 22.18 or newer (24 LTS recommended); this is Node.js ' + process.version + ' (' + process.execPath + ').',
      'It runs its TypeScript sources directly, which older versions of Node.js cannot do.',
      '',
      'Get Node.js 24, then run the same command again:',
      '  - with nvm:  nvm install 24 && nvm use 24',
      '  - with fnm:  fnm install 24 && fnm use 24',
      '  - from npm, without root:',
      '      npm install --prefix ~/.local/node24 ' + pkg,
      '      export PATH="$HOME/.local/node24/node_modules/node-' + process.platform + '-' + process.arch + '/bin:$PATH"',
      '  - or the installers and binaries at https://nodejs.org/en/download',
      '',
    ].join('\n'),
  )
  process.exit(1)
}

// A process that runs the detector (`start`, `detect`) favors memory (shared/v8-memory.ts). On
// Linux with glibc that includes capping glibc's malloc arenas: each thread that allocates (V8's
// GC helpers, libuv's pool) otherwise gets an arena of its own, and freed memory stays resident in
// each (bench part 4's child at 20,000 series, side by side: 1,729 B of RSS per series on average
// over three runs with MALLOC_ARENA_MAX=2, 2,117 B without; docs/reliability.md). The variable must be set before the process starts, so this process replaces itself once
// with it set (process.execve: same PID, same stdio and signals). The only read of process.env
// outside shared/config.ts: it happens before anything is loaded. BURNWATCH_V8_FAVOR_MEMORY=0, or
// a MALLOC_ARENA_MAX of your own, leaves it alone.
var command = process.argv[2]
if (
  (command === 'start' || command === 'detect') &&
  process.env.BURNWATCH_V8_FAVOR_MEMORY !== '0' &&
  !process.env.MALLOC_ARENA_MAX &&
  process.platform === 'linux' &&
  typeof process.execve === 'function' &&
  process.report.getReport().header.glibcVersionRuntime
) {
  var env = Object.assign({}, process.env, { MALLOC_ARENA_MAX: '2' })
  try {
    process.execve(process.execPath, [process.execPath].concat(process.execArgv, process.argv.slice(1)), env)
  } catch {
    // not replaced (the call failed before exec): go on with glibc's defaults
  }
}

// kafkajs 2.2.4 schedules negative timeouts on Node ≥ 23 (harmless; tulios/kafkajs#1751): drop
// that one warning, as `--disable-warning=TimeoutNegativeWarning` would, and keep all others
var emitWarning = process.emitWarning
process.emitWarning = function (warning, options) {
  var type = typeof options === 'string' ? options : options && options.type
  if (type === 'TimeoutNegativeWarning' || (warning && warning.name === 'TimeoutNegativeWarning')) return
  return emitWarning.apply(process, arguments)
}

import('./burnwatch.ts').catch(function (err) {
  process.stderr.write('burnwatch: ' + (err && err.stack ? err.stack : String(err)) + '\n')
  process.exitCode = 1
})
