#!/usr/bin/env -S node --disable-warning=TimeoutNegativeWarning
// The `burnwatch` executable: a thin entry point; the commands live in services/cli/.
import { main } from '../services/cli/main.ts'

process.exitCode = await main(process.argv.slice(2))
