/**
 * Text from events (team, endpoint, model, deployment IDs…) shown to a person outside HTML and
 * Slack: a terminal, a chart. Terminal escape sequences (ANSI CSI/OSC) and every other control
 * character are removed, so a name cannot recolour, move the cursor, retitle or clear the
 * operator's terminal. Newlines and tabs are kept only where the caller allows them.
 */

// ESC [ … final byte (CSI), ESC ] … BEL or ESC \ (OSC), ESC followed by one char, and the 8-bit CSI
// eslint-disable-next-line no-control-regex
const ESCAPE_SEQUENCES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|\u001b[@-_]?|\u009b[0-?]*[ -/]*[@-~]/g
// eslint-disable-next-line no-control-regex
const CONTROLS_KEEP_LINES = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g
// eslint-disable-next-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g

/**
 * Removes terminal escape sequences and control characters (also the Unicode bidi overrides that
 * can make text read backwards). `multiline` keeps `\n` and `\t`, for text that is laid out in lines.
 */
export function printable(s: string, opts: { multiline?: boolean } = {}): string {
  return s.replace(ESCAPE_SEQUENCES, '').replace(opts.multiline ? CONTROLS_KEEP_LINES : CONTROLS, '')
}
