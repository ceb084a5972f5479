'use strict'
// Sluice's bridge sidecar: runs Segment's own destination code (@segment/action-destinations)
// for a Python worker, speaking JSON lines over stdin/stdout (docs/bridge.md has the protocol).
// Every HTTP request that code makes is sent back to Python as a `fetch` message, so the
// worker's client (timeouts, rate limits, egress policy, trace) sends it. stdout carries the
// protocol only; console output of destination code goes to stderr.

const path = require('path')
const legacyUrl = require('url')
const fs = require('fs')
const util = require('util')
const readline = require('readline')
const { AsyncLocalStorage } = require('async_hooks')

const ROOT = process.argv[2] || __dirname
const PKG_DIR = path.join(ROOT, 'node_modules', '@segment', 'action-destinations')
const DEST_DIR = path.join(PKG_DIR, 'dist', 'destinations')
const SLUG = /^[a-z0-9][a-z0-9-]*$/
const MAX_BODY_CHARS = 4096 // of an error entry's response body echoed back in a result

const stdout = process.stdout
const send = (msg) => stdout.write(JSON.stringify(msg) + '\n')
const toStderr = (...args) => process.stderr.write(util.format(...args) + '\n')
for (const name of ['log', 'info', 'debug', 'warn', 'error', 'trace', 'dir']) console[name] = toStderr

// --- the fetch proxy: installed in place of cross-fetch before actions-core loads ----------
const corePath = require.resolve('@segment/actions-core', { paths: [PKG_DIR] })
const crossFetchPath = require.resolve('cross-fetch', { paths: [path.dirname(corePath)] })
const original = require(crossFetchPath)
const { Headers, Request, Response } = original
const nodeFetchPath = require.resolve('node-fetch', { paths: [path.dirname(crossFetchPath)] })
const { FetchError, AbortError } = require(nodeFetchPath)

const executions = new AsyncLocalStorage() // the execute a fetch belongs to
const pendingFetches = new Map() // fetch id -> {resolve, reject}
let fetchSeq = 0

async function proxyFetch(input, init) {
  const request = input instanceof Request && init === undefined ? input : new Request(input, init)
  const exec = executions.getStore()
  if (!exec || exec.cancelled) {
    throw new FetchError(`request to ${request.url} failed, reason: no execution in progress`, 'system', { code: 'EBRIDGE' })
  }
  const wire = onTheWire(request)
  const buffer = request.body == null ? null : Buffer.from(await request.arrayBuffer())
  const id = `f${++fetchSeq}`
  const msg = { op: 'fetch', id, exec: exec.id, method: request.method, url: wire.url, headers: {} }
  for (const [key, value] of request.headers) msg.headers[key] = value
  if (wire.authorization && !request.headers.has('authorization')) msg.headers.authorization = wire.authorization
  if (buffer !== null) {
    const text = buffer.toString('utf8')
    if (text.includes('\uFFFD')) msg.body_b64 = buffer.toString('base64')
    else msg.body = text
  }
  const signal = request.signal
  let onAbort = null
  const answer = await new Promise((resolve, reject) => {
    pendingFetches.set(id, { resolve, reject, exec: exec.id })
    if (signal) {
      onAbort = () => {
        if (pendingFetches.delete(id)) {
          send({ op: 'fetch_cancel', id })
          reject(new AbortError('The operation was aborted.'))
        }
      }
      if (signal.aborted) onAbort()
      else signal.addEventListener('abort', onAbort, { once: true })
    }
    send(msg)
  }).finally(() => {
    if (onAbort) signal.removeEventListener('abort', onAbort) // a listener would keep it alive
  })
  if (answer.error !== undefined) {
    throw new FetchError(`request to ${request.url} failed, reason: ${answer.error}`, 'system', { code: answer.code || 'EPROXY' })
  }
  const body = answer.body_b64 !== undefined ? Buffer.from(answer.body_b64, 'base64') : Buffer.from(answer.body || '', 'utf8')
  return new Response(body, { status: answer.status, headers: answer.headers || {}, url: request.url })
}
// What node-fetch (its getNodeRequestOptions) and Node's http module would send for this
// request's URL, so Python sends the same: the same refusals (a relative URL, another protocol:
// Segment's code gets node-fetch's TypeError, and nothing is sent), the path and query as node-fetch
// parsed and escaped them (sent byte for byte by Python), no fragment, and user info in the URL
// as an `Authorization: Basic` header rather than in the URL (Python would lose it when
// `delivery.base_url` replaces the host, and trace would show it).
const requestInternals = (request) => {
  const key = Object.getOwnPropertySymbols(request).find((s) => s.description === 'Request internals')
  return key ? request[key] : undefined
}
function onTheWire(request) {
  const parsed = requestInternals(request)?.parsedURL || legacyUrl.parse(request.url)
  if (!parsed.protocol || !parsed.hostname) throw new TypeError('Only absolute URLs are supported')
  if (!/^https?:$/.test(parsed.protocol)) throw new TypeError('Only HTTP(S) protocols are supported')
  const url = `${parsed.protocol}//${parsed.host}${parsed.path || '/'}`
  const authorization = parsed.auth ? `Basic ${Buffer.from(parsed.auth).toString('base64')}` : null
  return { url, authorization }
}

proxyFetch.ponyfill = true
proxyFetch.fetch = proxyFetch
proxyFetch.default = proxyFetch
Object.assign(proxyFetch, { Headers, Request, Response })
require.cache[crossFetchPath].exports = proxyFetch
globalThis.fetch = proxyFetch // no destination may reach the network around the proxy

const core = require(corePath)
if (core.fetch !== proxyFetch) {
  // An upgrade changed how actions-core gets its fetch: refuse to run rather than let requests
  // bypass Python.
  toStderr('sluice bridge: the fetch proxy is not in place in @segment/actions-core; refusing to start')
  process.exit(3)
}
const { Destination, fieldsToJsonSchema } = core

// --- destinations, loaded one by one from their own module paths ---------------------------
const destinations = new Map() // slug -> Destination

function loadDefinition(slug) {
  if (typeof slug !== 'string' || !SLUG.test(slug)) throw new BridgeUsageError(`invalid destination slug: ${JSON.stringify(slug)}`)
  if (!fs.existsSync(path.join(DEST_DIR, slug, 'index.js'))) throw new BridgeUsageError(`unknown destination: ${slug}`)
  return require(path.join(DEST_DIR, slug)).default
}

function destination(slug) {
  let dest = destinations.get(slug)
  if (!dest) {
    dest = new Destination(loadDefinition(slug))
    destinations.set(slug, dest)
  }
  return dest
}

class BridgeUsageError extends Error {
  constructor(message) {
    super(message)
    this.name = 'BridgeUsageError'
  }
}

const noop = () => {}
const statsClient = { observe: noop, _name: (n) => n, _tags: (t) => t || [], incr: noop, set: noop, histogram: noop }
const logger = { level: 'warn', name: 'sluice-bridge', debug: noop, info: noop, log: noop, warn: toStderr, error: toStderr, crit: toStderr, withTags: noop }

// --- ops --------------------------------------------------------------------------------------
async function execute(msg, exec) {
  const dest = destination(msg.dest)
  const sub = msg.subscription || {}
  const action = dest.definition.actions[sub.partnerAction]
  if (!action) throw new BridgeUsageError(`${msg.dest} has no action ${JSON.stringify(sub.partnerAction)}`)
  const batch = Array.isArray(msg.events)
  if (batch && !action.performBatch) throw new BridgeUsageError(`${msg.dest}.${sub.partnerAction} has no performBatch: send one event per execute`)
  const settings = { ...(msg.settings || {}), subscription: sub }
  const options = {
    statsContext: { statsClient, tags: [] },
    logger,
    features: msg.features || {},
    onTokenRefresh: async (tokens) => {
      send({ op: 'token_refresh', exec: exec.id, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken, expiresIn: tokens.expiresIn })
    }
  }
  try {
    const results = batch ? await dest.onBatch(msg.events, settings, options) : await dest.onEvent(msg.event, settings, options)
    return results.map(plainResult)
  } finally {
    dest.responses.length = 0 // Destination keeps every response it saw: drop them
  }
}

function plainResult(result) {
  if (result && Array.isArray(result.multistatus)) {
    return { multistatus: result.multistatus.map(plainStatus) }
  }
  return { output: typeof result?.output === 'string' ? result.output : null }
}

function plainStatus(entry) {
  const out = { status: entry?.status ?? 500 }
  if (entry?.errortype !== undefined) out.errortype = entry.errortype
  if (entry?.errormessage !== undefined) out.errormessage = String(entry.errormessage)
  if (out.status >= 300 && entry?.body !== undefined) {
    const body = typeof entry.body === 'string' ? entry.body : JSON.stringify(entry.body)
    out.body = body && body.length > MAX_BODY_CHARS ? body.slice(0, MAX_BODY_CHARS) : body
  }
  return out
}

function plainError(err) {
  const error = { name: err?.name || 'Error', message: String(err?.message ?? err) }
  const status = err?.status ?? err?.response?.status
  if (typeof status === 'number') error.status = status
  if (err?.code !== undefined) error.code = String(err.code)
  if (typeof err?.retry === 'boolean') error.retry = err.retry
  return error
}

async function deleteUser(msg) {
  // Segment's deletion of one user: the definition's `onDelete`, given {userId, anonymousId}.
  const dest = destination(msg.dest)
  if (typeof dest.onDelete !== 'function') throw new BridgeUsageError(`${msg.dest} has no onDelete`)
  try {
    const result = await dest.onDelete(msg.event || {}, msg.settings || {}, { statsContext: { statsClient, tags: [] }, logger })
    return [plainResult(result)]
  } finally {
    dest.responses.length = 0
  }
}

async function testAuth(msg) {
  await destination(msg.dest).testAuthentication(msg.settings || {})
  return null
}

function catalog(msg) {
  const entries = []
  const errors = []
  for (const slug of fs.readdirSync(DEST_DIR).sort()) {
    if (!fs.existsSync(path.join(DEST_DIR, slug, 'index.js'))) continue
    try {
      entries.push(describe(slug, loadDefinition(slug)))
    } catch (err) {
      errors.push({ slug, error: plainError(err) })
    }
  }
  const doc = { package: packageVersion(), node: process.versions.node, metadata_ids: metadataIds(), destinations: entries, errors }
  fs.writeFileSync(msg.out, JSON.stringify(doc))
  return { destinations: entries.length, errors: errors.length }
}

function describe(slug, def) {
  const auth = def.authentication || {}
  const actions = {}
  for (const [key, action] of Object.entries(def.actions || {})) {
    actions[key] = {
      title: action.title,
      description: action.description,
      default_subscription: action.defaultSubscription ?? null,
      fields: fieldsToJsonSchema(action.fields || {}),
      has_perform_batch: typeof action.performBatch === 'function',
      has_sync_mode: !!action.syncMode,
      personas_required: Object.values(action.fields || {}).some(
        (f) => f.required === true && /context\.personas/.test(JSON.stringify(f.default ?? ''))
      ),
      dynamic_fields: Object.keys(action.dynamicFields || {}),
      depends_on: dependsOn(action.fields)
    }
  }
  const source = ownSource(slug)
  return {
    slug,
    name: def.name,
    definition_slug: def.slug ?? null,
    description: def.description ?? null,
    mode: def.mode ?? null,
    auth_scheme: auth.scheme ?? null,
    auth_fields: fieldsToJsonSchema(auth.fields || {}),
    auth_depends_on: dependsOn(auth.fields),
    has_test_authentication: typeof auth.testAuthentication === 'function',
    has_refresh_access_token: typeof auth.refreshAccessToken === 'function',
    has_audience_config: !!def.audienceConfig,
    has_on_delete: typeof def.onDelete === 'function',
    presets: (def.presets || []).map((p) => ({
      name: p.name,
      partner_action: p.partnerAction,
      subscribe: p.subscribe ?? null,
      mapping: p.mapping ?? {},
      type: p.type ?? null
    })),
    actions,
    non_http_clients: [...new Set([...source.matchAll(/require\("(@aws-sdk\/client-[a-z0-9-]+|kafkajs|ssh2-sftp-client|net|tls|dgram)"\)/g)].map((m) => m[1]))].concat(
      /\b(getS3Client|assumeRole)\b/.test(source) ? ['aws-sdk helpers (lib/AWS)'] : []
    ),
    internal_contexts: ['engageDestinationCache', 'stateContext', 'transactionContext'].filter((name) => source.includes(name))
  }
}

function dependsOn(fields) {
  // Which fields Segment's settings form shows only under a condition on other fields
  // ({match, conditions: [{fieldKey, operator, value}]}); fieldsToJsonSchema leaves it out.
  const found = {}
  for (const [key, field] of Object.entries(fields || {})) if (field.depends_on) found[key] = field.depends_on
  return found
}

function ownSource(slug) {
  // The destination's own compiled files, without its tests: what its code can reach directly.
  const parts = []
  const walk = (dir) => {
    for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name)
      if (entry.isDirectory()) {
        if (!/^_+tests?_+$/.test(entry.name)) walk(full)
      } else if (entry.name.endsWith('.js')) {
        parts.push(fs.readFileSync(full, 'utf8'))
      }
    }
  }
  walk(path.join(DEST_DIR, slug))
  return parts.join('\n')
}

function metadataIds() {
  // register('<metadata id>', './<slug>') in the package index, read as text: requiring it
  // would load every destination.
  const ids = {}
  const text = fs.readFileSync(path.join(DEST_DIR, 'index.js'), 'utf8')
  for (const m of text.matchAll(/register\('([0-9a-f]+)',\s*'\.\/([a-z0-9-]+)'\)/g)) ids[m[2]] = m[1]
  return ids
}

function packageVersion() {
  return JSON.parse(fs.readFileSync(path.join(PKG_DIR, 'package.json'), 'utf8')).version
}

function status() {
  const mem = process.memoryUsage()
  return { rss: mem.rss, heap_used: mem.heapUsed, loaded: [...destinations.keys()], in_flight: inFlight.size }
}

// --- the loop -----------------------------------------------------------------------------
const inFlight = new Map() // execute id -> exec context

function run(msg, work) {
  const exec = { id: msg.id, cancelled: false }
  inFlight.set(msg.id, exec)
  executions.run(exec, () => Promise.resolve().then(() => work(msg, exec))).then(
    (result) => send({ op: 'result', id: msg.id, ok: true, result }),
    (err) => send({ op: 'result', id: msg.id, ok: false, error: plainError(err) })
  ).finally(() => inFlight.delete(msg.id))
}

function handle(msg) {
  switch (msg.op) {
    case 'fetch_result': {
      const waiter = pendingFetches.get(msg.id)
      if (waiter) {
        pendingFetches.delete(msg.id)
        waiter.resolve(msg)
      }
      return
    }
    case 'execute':
      return run(msg, execute)
    case 'test_auth':
      return run(msg, testAuth)
    case 'delete':
      return run(msg, deleteUser)
    case 'catalog':
      return run(msg, catalog)
    case 'cancel': {
      // Python gave up on this execute: fail its requests still waiting, so it ends.
      const exec = inFlight.get(msg.id)
      if (exec) exec.cancelled = true
      for (const [id, waiter] of pendingFetches) {
        if (waiter.exec !== msg.id) continue
        pendingFetches.delete(id)
        waiter.reject(new FetchError('request cancelled: the execution was abandoned', 'system', { code: 'EBRIDGE' }))
      }
      return
    }
    case 'ping':
      return send({ op: 'pong', id: msg.id, ...status() })
    default:
      return send({ op: 'error', id: msg.id ?? null, message: `unknown op ${JSON.stringify(msg.op)}` })
  }
}

const lines = readline.createInterface({ input: process.stdin, crlfDelay: Infinity })
lines.on('line', (line) => {
  let msg
  try {
    msg = JSON.parse(line)
  } catch (err) {
    send({ op: 'error', id: null, message: `not JSON: ${err.message}` })
    return
  }
  handle(msg)
})
lines.on('close', () => process.exit(0)) // the worker went away: so do we
process.on('unhandledRejection', (err) => toStderr('sluice bridge: unhandled rejection:', err))
send({ op: 'ready', node: process.versions.node, package: packageVersion(), pid: process.pid })
