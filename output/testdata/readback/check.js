// check.js reads a Parquet file with hyparquet, an implementation
// independent of the Go writer, and compares it to the JSONL file the same
// records were written to:
//
//	node check.js data.parquet data.jsonl
//
// It fails (exit 1, one line per problem on stderr) when the row counts
// differ, when a row's value differs, when a JSONL key has no column or a
// column no key (in the same order), or when a column's type does not
// hold the JSONL value: a string column for a string, DOUBLE for a
// number written as a float (1.0, 0.43), INT64 for one written as an
// integer, LIST for an array, a struct for an object, and an OPTIONAL
// column wherever JSONL has a null. On success it prints
// "N rows match" and the schema it checked.
import { readFileSync } from 'node:fs'
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet'

const [parquetPath, jsonlPath] = process.argv.slice(2)
if (!parquetPath || !jsonlPath) {
  console.error('usage: node check.js FILE.parquet FILE.jsonl')
  process.exit(2)
}

const problems = []
const problem = (msg) => {
  if (problems.length < 50) problems.push(msg)
}

// parseJSON parses one JSON text, keeping whether each number was
// written as an integer or a float: JSON.parse reads both as a number.
function parseJSON(text) {
  let i = 0
  const ws = () => { while (' \t\r\n'.includes(text[i]) && i < text.length) i++ }
  const fail = (what) => { throw new Error(`${what} at byte ${i}`) }
  function value() {
    ws()
    const c = text[i]
    if (c === '{') {
      i++
      const fields = []
      ws()
      if (text[i] === '}') { i++; return { kind: 'object', fields } }
      for (;;) {
        ws()
        if (text[i] !== '"') fail('want a key')
        const key = string()
        ws()
        if (text[i++] !== ':') fail('want :')
        fields.push([key, value()])
        ws()
        if (text[i] === ',') { i++; continue }
        if (text[i++] === '}') return { kind: 'object', fields }
        fail('want , or }')
      }
    }
    if (c === '[') {
      i++
      const items = []
      ws()
      if (text[i] === ']') { i++; return { kind: 'array', items } }
      for (;;) {
        items.push(value())
        ws()
        if (text[i] === ',') { i++; continue }
        if (text[i++] === ']') return { kind: 'array', items }
        fail('want , or ]')
      }
    }
    if (c === '"') return { kind: 'string', value: string() }
    for (const [word, v] of [['null', { kind: 'null' }], ['true', { kind: 'bool', value: true }], ['false', { kind: 'bool', value: false }]]) {
      if (text.startsWith(word, i)) { i += word.length; return v }
    }
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 64))
    if (!m) fail('want a value')
    i += m[0].length
    if (m[2] || m[3]) return { kind: 'float', value: Number(m[0]) }
    return { kind: 'int', value: BigInt(m[0]) }
  }
  function string() {
    const start = i
    i++
    while (text[i] !== '"') {
      if (i >= text.length) fail('unterminated string')
      i += text[i] === '\\' ? 2 : 1
    }
    i++
    return JSON.parse(text.slice(start, i))
  }
  const v = value()
  ws()
  if (i !== text.length) fail('trailing text')
  return v
}

// columnType describes a Parquet schema node as the checker sees it.
function columnType(node) {
  const el = node.element
  const optional = el.repetition_type === 'OPTIONAL'
  if (el.repetition_type === 'REPEATED') throw new Error(`${el.name}: a bare repeated field, not a LIST`)
  if (el.logical_type?.type === 'LIST' || el.converted_type === 'LIST') {
    const rep = node.children[0]
    if (rep?.element.repetition_type !== 'REPEATED' || rep.children.length !== 1) {
      throw new Error(`${el.name}: not a three-level LIST`)
    }
    return { kind: 'list', optional, element: columnType(rep.children[0]) }
  }
  if (node.children.length > 0) {
    return { kind: 'struct', optional, fields: node.children.map((c) => [c.element.name, columnType(c)]) }
  }
  switch (el.type) {
    case 'BYTE_ARRAY':
      if (el.logical_type?.type !== 'STRING' && el.converted_type !== 'UTF8') throw new Error(`${el.name}: BYTE_ARRAY without the STRING type`)
      return { kind: 'string', optional }
    case 'DOUBLE': return { kind: 'float', optional }
    case 'INT64': return { kind: 'int', optional }
    case 'BOOLEAN': return { kind: 'bool', optional }
  }
  throw new Error(`${el.name}: unexpected physical type ${el.type}`)
}

function typeString(t) {
  const q = t.optional ? '?' : ''
  if (t.kind === 'list') return `list<${typeString(t.element)}>${q}`
  if (t.kind === 'struct') return `struct<${t.fields.map(([k, f]) => `${k}:${typeString(f)}`).join(',')}>${q}`
  return t.kind + q
}

// compare checks the JSONL value j against the Parquet value p read from
// a column of type t.
function compare(where, j, p, t) {
  if (j.kind === 'null') {
    if (!t.optional) problem(`${where}: JSONL null, but the column is required (${typeString(t)})`)
    if (p !== null && p !== undefined) problem(`${where}: JSONL null, Parquet ${JSON.stringify(p, big)}`)
    return
  }
  if (p === null || p === undefined) {
    problem(`${where}: JSONL ${j.kind}, Parquet null`)
    return
  }
  switch (t.kind) {
    case 'struct': {
      if (j.kind !== 'object') return problem(`${where}: JSONL ${j.kind}, column is a struct`)
      const jk = j.fields.map(([k]) => k).join(',')
      const pk = t.fields.map(([k]) => k).join(',')
      if (jk !== pk) return problem(`${where}: JSONL keys [${jk}], columns [${pk}]`)
      j.fields.forEach(([k, v], n) => compare(`${where}.${k}`, v, p[k], t.fields[n][1]))
      return
    }
    case 'list':
      if (j.kind !== 'array') return problem(`${where}: JSONL ${j.kind}, column is a list`)
      if (!Array.isArray(p) || p.length !== j.items.length) return problem(`${where}: JSONL ${j.items.length} items, Parquet ${JSON.stringify(p, big)}`)
      j.items.forEach((v, n) => compare(`${where}[${n}]`, v, p[n], t.element))
      return
    case 'int':
      if (j.kind !== 'int') return problem(`${where}: JSONL ${j.kind}, column is int64`)
      if (BigInt(p) !== j.value) problem(`${where}: JSONL ${j.value}, Parquet ${p}`)
      return
    case 'float':
      if (j.kind !== 'float') return problem(`${where}: JSONL ${j.kind} (${j.value}), column is double`)
      if (typeof p !== 'number' || !Object.is(p, j.value)) problem(`${where}: JSONL ${j.value}, Parquet ${p}`)
      return
    default:
      if (j.kind !== t.kind) return problem(`${where}: JSONL ${j.kind}, column is ${t.kind}`)
      if (p !== j.value) problem(`${where}: JSONL ${JSON.stringify(j.value)}, Parquet ${JSON.stringify(p)}`)
  }
}

function big(_, v) { return typeof v === 'bigint' ? v.toString() : v }

const file = await asyncBufferFromFile(parquetPath)
const metadata = await parquetMetadataAsync(file)
const root = columnType(parquetSchema(metadata))
const rows = await parquetReadObjects({ file, metadata })
const lines = readFileSync(jsonlPath, 'utf8').split('\n').filter((l) => l.trim() !== '')

if (rows.length !== lines.length || Number(metadata.num_rows) !== lines.length) {
  problem(`row count: JSONL ${lines.length}, Parquet ${rows.length} (footer says ${metadata.num_rows})`)
}
for (let n = 0; n < Math.min(rows.length, lines.length); n++) {
  let j
  try {
    j = parseJSON(lines[n])
  } catch (e) {
    problem(`${jsonlPath}:${n + 1}: ${e.message}`)
    continue
  }
  compare(`row ${n + 1}`, j, rows[n], root)
}

if (problems.length > 0) {
  for (const p of problems) console.error(p)
  process.exit(1)
}
console.log(`${rows.length} rows match in ${metadata.row_groups.length} row groups`)
console.log(typeString(root))
