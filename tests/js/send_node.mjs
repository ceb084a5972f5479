// Drive the real @segment/analytics-node against a Sluice server, as an application would.
//
//   node send_node.mjs --host http://127.0.0.1:8088 --write-key KEY [--flush-at N] < calls.json
//
// stdin is a JSON list of calls, each `{"call": "track", "params": {...}}` where `params` is the
// object analytics-node's method takes (`messageId` included: the library accepts it). The script
// makes every call, waits for `closeAndFlush()`, and prints one JSON object on stdout: every HTTP
// request the library made (URL, headers, body size, item count) with the status Sluice answered,
// and every delivery error the library reported. It exits 0 when every call was delivered, 1 when
// any was not, and 2 on bad usage.

import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { Analytics } from '@segment/analytics-node'

const CALLS = new Set(['identify', 'track', 'page', 'screen', 'group', 'alias'])

function usage(message) {
  process.stderr.write(`send_node.mjs: ${message}\n`)
  process.exit(2)
}

const { values: args } = parseArgs({
  options: {
    host: { type: 'string' },
    'write-key': { type: 'string' },
    'flush-at': { type: 'string', default: '15' },
    'flush-interval': { type: 'string', default: '10000' },
    'max-retries': { type: 'string', default: '3' },
  },
})
if (!args.host || !args['write-key']) usage('--host and --write-key are required')

const calls = JSON.parse(readFileSync(0, 'utf8'))
if (!Array.isArray(calls)) usage('stdin must be a JSON list of calls')

const analytics = new Analytics({
  writeKey: args['write-key'],
  host: args.host,
  flushAt: Number(args['flush-at']),
  flushInterval: Number(args['flush-interval']),
  maxRetries: Number(args['max-retries']),
  httpRequestTimeout: 15000,
})

const requests = []
const byBody = new Map() // request body -> its entry in `requests` (one per attempt)
const errors = []
analytics.on('http_request', (req) => {
  const body = JSON.parse(req.body)
  const entry = {
    url: req.url,
    method: req.method,
    headers: req.headers,
    bytes: Buffer.byteLength(req.body),
    items: body.batch.length,
    messageIds: body.batch.map((item) => item.messageId),
    status: null,
  }
  requests.push(entry)
  byBody.set(req.body, entry)
})
analytics.on('http_response', (res) => {
  const entry = byBody.get(res.body)
  if (entry) {
    entry.status = res.status
    entry.statusText = res.statusText
  }
})
analytics.on('error', (err) => {
  errors.push({
    code: err.code,
    reason: String(err.reason?.message ?? err.reason),
    messageId: err.ctx?.event?.messageId ?? null,
  })
})

const delivered = []
for (const { call, params } of calls) {
  if (!CALLS.has(call)) usage(`unknown call ${JSON.stringify(call)}`)
  analytics[call](params, (err, ctx) => {
    if (!err) delivered.push(ctx.event.messageId)
  })
}
await analytics.closeAndFlush({ timeout: 20000 })

process.stdout.write(
  JSON.stringify({ library: analytics.VERSION, requests, errors, delivered }) + '\n'
)
process.exit(errors.length === 0 && delivered.length === calls.length ? 0 : 1)
