/**
 * Extracts the example queries of docs/clickhouse.md: every ```sql block under a `### `
 * heading (the first block of that heading) is one query, titled by the heading. The
 * integration test runs each of them, so the documentation and the tests cannot drift.
 * SQL blocks under other headings (e.g. operator statements) are not queries.
 */

export interface DocQuery {
  title: string
  sql: string
  /** names of the `{name:Type}` query parameters, in order of first use */
  params: string[]
  /** the declared type of each parameter (`DateTime('UTC')`, `String`, …) */
  paramTypes: Record<string, string>
}

const HEADING = /^(#{1,6})\s+(.*?)\s*#*\s*$/
const FENCE = /^\s*(`{3,}|~{3,})\s*([\w-]*)/
const PARAM = /\{([A-Za-z_][A-Za-z0-9_]*)\s*:\s*([^{}]+?)\s*\}/g

export function docQueries(markdown: string): DocQuery[] {
  const out: DocQuery[] = []
  const lines = markdown.split(/\r?\n/)
  let title: string | null = null
  let taken = false
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? ''
    const fence = FENCE.exec(line)
    if (fence) {
      const marker = fence[1] ?? '```'
      const lang = (fence[2] ?? '').toLowerCase()
      const body: string[] = []
      let j = i + 1
      for (; j < lines.length; j++) {
        const l = lines[j] ?? ''
        if (l.trim().startsWith(marker) && l.trim().replace(/[`~]/g, '') === '') break
        body.push(l)
      }
      i = j
      if (lang === 'sql' && title !== null && !taken) {
        const sql = body.join('\n').trim().replace(/;\s*$/, '')
        out.push({ title, sql, ...paramsOf(sql) })
        taken = true
      }
      continue
    }
    const h = HEADING.exec(line)
    if (h) {
      title = (h[1] ?? '').length === 3 ? (h[2] ?? '').trim() : null
      taken = false
    }
  }
  return out
}

function paramsOf(sql: string): { params: string[]; paramTypes: Record<string, string> } {
  const params: string[] = []
  const paramTypes: Record<string, string> = {}
  for (const m of sql.matchAll(PARAM)) {
    const name = m[1] ?? ''
    if (!(name in paramTypes)) {
      params.push(name)
      paramTypes[name] = m[2] ?? ''
    }
  }
  return { params, paramTypes }
}
