// Reads one Apache Iceberg table with icebird (npm) and prints it as JSON
// lines: first {"schema": <the table's current schema>}, then one object per
// row, keyed by column name.
//
//   node read.mjs ICEBIRD_MODULE_DIR TABLE_URL METADATA_FILE_NAME S3_ENDPOINT
//
// TABLE_URL is the table's folder: file:///..., /... or s3://bucket/prefix.
// METADATA_FILE_NAME ("" for the one version-hint.text names) is a file in
// TABLE_URL/metadata. S3_ENDPOINT ("" for none) is a path-style S3 server.
//
// icebird reads everything through fetch, and rewrites s3://bucket/key to
// https://bucket.s3.amazonaws.com/key; Node's fetch cannot read file://.
// So fetch is wrapped: file URLs and absolute paths are read from disk
// (honouring Range, as hyparquet asks for byte ranges), the S3 URLs go to
// S3_ENDPOINT path style, and any other URL is refused, so a test never
// reaches past this machine.
//
// One repair: icebird 0.3.1 inflates Avro "deflate" blocks with
// hyparquet-compressors' gunzip, which on a raw deflate stream (what Avro
// and so every Iceberg manifest writer uses) runs past the stream's end and
// throws "offset is out of bounds". So each Avro file is handed to icebird
// with its blocks inflated by Node's zlib and its codec set to "null"; the
// records, and all Iceberg reading of them, are still icebird's.
//
// Values: 64-bit integers (BigInt) are printed as decimal strings, so none
// loses precision; timestamps and dates as ISO-8601 strings (icebird makes
// JavaScript Dates: millisecond precision); byte arrays as base64; missing
// values as null.
import { readFile } from 'node:fs/promises'
import { inflateRawSync } from 'node:zlib'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const [moduleDir, tableUrl, metadataFileName, s3Endpoint] = process.argv.slice(process.argv.length - 4)

const realFetch = globalThis.fetch

/** Serves a local file as fetch would over HTTP, with Range and HEAD. */
async function fetchFile(path, init) {
  let data
  try {
    data = await readFile(path)
  } catch (err) {
    if (err.code === 'ENOENT') return new Response(`no such file: ${path}`, { status: 404, statusText: 'Not Found' })
    throw err
  }
  const headers = new Headers(init?.headers)
  if ((init?.method ?? 'GET').toUpperCase() === 'HEAD') {
    return new Response(null, { status: 200, headers: { 'Content-Length': String(data.length) } })
  }
  const range = headers.get('Range')
  if (range) {
    const m = /^bytes=(\d+)-(\d*)$/.exec(range)
    if (!m) return new Response(`bad range ${range}`, { status: 416 })
    const start = Number(m[1])
    const end = m[2] === '' ? data.length - 1 : Math.min(Number(m[2]), data.length - 1)
    if (start > end) return new Response(`range ${range} past the end of ${path}`, { status: 416 })
    return new Response(data.subarray(start, end + 1), {
      status: 206,
      headers: { 'Content-Length': String(end - start + 1), 'Content-Range': `bytes ${start}-${end}/${data.length}` },
    })
  }
  return new Response(data, { status: 200, headers: { 'Content-Length': String(data.length) } })
}

/** Reads an Avro long (zigzag varint) at r.pos. */
function readLong(buf, r) {
  let n = 0
  let scale = 1
  for (;;) {
    const b = buf[r.pos++]
    if (b === undefined) throw new Error('icebird reader: truncated Avro file')
    n += (b & 0x7f) * scale
    scale *= 128
    if (!(b & 0x80)) break
  }
  return n % 2 === 0 ? n / 2 : -(n + 1) / 2
}

/** Encodes an Avro long (zigzag varint). */
function longBytes(v) {
  let n = v >= 0 ? v * 2 : -v * 2 - 1
  const out = []
  do {
    let b = n % 128
    n = Math.floor(n / 128)
    if (n > 0) b |= 0x80
    out.push(b)
  } while (n > 0)
  return Buffer.from(out)
}

/** An Avro object container file with deflate blocks, rewritten with its
 * blocks inflated and codec "null"; any other bytes, unchanged. */
function inflateAvro(buf) {
  if (buf.length < 4 || buf.toString('latin1', 0, 4) !== 'Obj\x01') return buf
  const r = { pos: 4 }
  const meta = new Map()
  for (let count = readLong(buf, r); count !== 0; count = readLong(buf, r)) {
    if (count < 0) {
      count = -count
      readLong(buf, r) // the block's size in bytes
    }
    for (let i = 0; i < count; i++) {
      const kl = readLong(buf, r)
      const key = buf.toString('utf8', r.pos, r.pos + kl)
      r.pos += kl
      const vl = readLong(buf, r)
      meta.set(key, buf.subarray(r.pos, r.pos + vl))
      r.pos += vl
    }
  }
  if (meta.get('avro.codec')?.toString() !== 'deflate') return buf
  meta.set('avro.codec', Buffer.from('null'))
  const sync = buf.subarray(r.pos, r.pos + 16)
  r.pos += 16
  const parts = [buf.subarray(0, 4), longBytes(meta.size)]
  for (const [k, v] of meta) parts.push(longBytes(Buffer.byteLength(k)), Buffer.from(k), longBytes(v.length), v)
  parts.push(longBytes(0), sync)
  while (r.pos < buf.length) {
    const objects = readLong(buf, r)
    const size = readLong(buf, r)
    const data = inflateRawSync(buf.subarray(r.pos, r.pos + size))
    r.pos += size + 16
    parts.push(longBytes(objects), longBytes(data.length), data, sync)
  }
  return Buffer.concat(parts)
}

/** fetch, with Avro files repaired (see above). Range reads are Parquet's. */
async function fetchRepaired(url, init) {
  const res = await fetchUnrepaired(url, init)
  if (!res.ok || res.status !== 200 || (init?.method ?? 'GET').toUpperCase() !== 'GET') return res
  const body = inflateAvro(Buffer.from(await res.arrayBuffer()))
  return new Response(body, { status: 200, headers: { 'Content-Length': String(body.length) } })
}

globalThis.fetch = async (input, init) => {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url
  return fetchRepaired(url, init)
}

async function fetchUnrepaired(url, init) {
  if (url.startsWith('file://')) return fetchFile(fileURLToPath(url), init)
  if (url.startsWith('/')) return fetchFile(url, init)
  const u = new URL(url)
  let bucket
  let key
  const virtualHost = /^([^.]+)\.s3\.amazonaws\.com$/.exec(u.hostname)
  if (u.protocol === 'https:' && virtualHost) {
    bucket = virtualHost[1]
    key = u.pathname
  } else if (u.protocol === 'https:' && u.hostname === 's3.amazonaws.com') {
    const slash = u.pathname.indexOf('/', 1)
    bucket = u.pathname.slice(1, slash < 0 ? undefined : slash)
    key = slash < 0 ? '/' : u.pathname.slice(slash)
  } else {
    throw new Error(`icebird reader: refusing to fetch ${url}: only local files and s3:// objects are read`)
  }
  if (!s3Endpoint) throw new Error(`icebird reader: ${url} is on S3, and no S3 endpoint was given`)
  return realFetch(`${s3Endpoint.replace(/\/$/, '')}/${bucket}${key}${u.search}`, init)
}

const { icebergMetadata, icebergRead } = await import(pathToFileURL(join(moduleDir, 'src', 'index.js')).href)

const table = tableUrl.startsWith('/') ? pathToFileURL(tableUrl).href.replace(/\/$/, '') : tableUrl.replace(/\/$/, '')
const metadata = await icebergMetadata({ tableUrl: table, metadataFileName: metadataFileName || undefined })
const schema = metadata.schemas.find(s => s['schema-id'] === metadata['current-schema-id'])
if (!schema) throw new Error(`icebird reader: the current schema ${metadata['current-schema-id']} is not in the metadata`)

/** Makes BigInt, byte arrays and undefined printable without loss. */
function replacer(_key, value) {
  if (typeof value === 'bigint') return value.toString()
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64')
  if (value === undefined) return null
  return value
}

const out = [JSON.stringify({ schema }, replacer)]
// A table with no snapshot yet, or whose snapshot has no data files, has no
// rows (icebird throws for both; the spec allows both).
const current = metadata['current-snapshot-id']
if (current !== undefined && current !== null && current >= 0) {
  let rows = []
  try {
    rows = await icebergRead({ tableUrl: table, metadata })
  } catch (err) {
    if (!/No data manifest files found/.test(err.message)) throw err
  }
  for (const row of rows) out.push(JSON.stringify(row, replacer))
}
process.stdout.write(out.join('\n') + '\n')
