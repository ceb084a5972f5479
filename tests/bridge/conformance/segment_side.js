'use strict'
// The conformance suite's reference half: what Segment's own code sends, run in plain Node by
// Segment's own test harness, the way the package's snapshot tests do it.
//
//   node --require freeze.js segment_side.js <bridge dir> <plan.json> <out.json>
//
// plan.json: {"destinations": [{"slug": "...", "actions": ["..."]}], "reply": {status, headers,
// body}}. For each destination and action, twice (required fields only, then all fields):
// inputs from the package's seeded generator `generateTestData(seed, definition, action,
// requiredOnly)` with seed "<definition slug>#<action>", the event `createTestEvent({properties})`
// with the generated fields as the mapping (literal values), the generated settings, no auth:
// the recipe of the package's snapshot.test.ts files. Then
// `createTestIntegration(definition).testAction(action, {event, mapping, settings, auth,
// statsContext, logger})`, with
// every HTTP request intercepted by nock (no network) and answered by `reply`, and recorded as
// it reached the wire: method, URL, headers (as node-fetch and Node's http module sent them),
// body bytes. `chance` and `nock` come from NODE_PATH (tests/bridge/conformance/package.json).
//
// Preset cases (plan.spec_events, and `presets` per destination: indexes into its definition's
// presets): each Segment-spec event against each automatic preset, the way Segment's
// production runs a subscription. The trigger is matched by Segment's own FQL
// (@segment/destination-subscriptions' parseFql + validate, as actions-core's onSubscription);
// a matching event then runs `executeAction(preset.partnerAction, {mapping: preset.mapping})` with
// settings from the generator (seed "<definition slug>#spec"). A non-matching one is recorded
// as `matched: false`: Sluice must filter it.

const fs = require('fs')
const path = require('path')

const [bridgeDir, planPath, outPath] = process.argv.slice(2)
const PKG_DIR = path.join(bridgeDir, 'node_modules', '@segment', 'action-destinations')
const DEST_DIR = path.join(PKG_DIR, 'dist', 'destinations')
const corePath = require.resolve('@segment/actions-core', { paths: [PKG_DIR] })
const crossFetchPath = require.resolve('cross-fetch', { paths: [path.dirname(corePath)] })

// nock hands the 'request' listener the body as utf8 text or hex; always hex keeps it exact.
const nockCommon = require('nock/lib/common')
nockCommon.isUtf8Representable = () => false
const nock = require('nock')

const { createTestIntegration, createTestEvent, Destination } = require(corePath)
const { parseFql, validate } = require(
  require.resolve('@segment/destination-subscriptions', { paths: [path.dirname(corePath)] })
)
const { generateTestData } = require(path.join(PKG_DIR, 'dist', 'lib', 'test-data'))
// No destination should use Node's own fetch (undici, which nock does not see); if one did, it
// goes through node-fetch here, as it goes through the fetch proxy in Sluice's sidecar.
globalThis.fetch = require(crossFetchPath)

const plan = JSON.parse(fs.readFileSync(planPath, 'utf8'))
const reply = plan.reply
// Fixed event identity and times, given to both halves (createTestEvent would make a random
// messageId and "now" timestamps).
const EVENT_FIELDS = {
  messageId: 'conformance-message-1',
  timestamp: '2024-03-05T06:07:08.009Z',
  receivedAt: '2024-03-05T06:07:08.109Z',
  sentAt: '2024-03-05T06:07:08.059Z'
}
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS']

let recorded = []
nock.disableNetConnect()
function interceptAll() {
  for (const method of METHODS) {
    const scope = nock(/.*/).persist().intercept(/.*/, method).reply(reply.status, reply.body, reply.headers)
    scope.on('request', (req, interceptor, bodyHex) => {
      const headers = {}
      for (const [name, value] of Object.entries(req.getHeaders())) {
        headers[name.toLowerCase()] = Array.isArray(value) ? value.map(String) : [String(value)]
      }
      const { proto, hostname, port } = req.options
      const standard = (proto === 'https' && +port === 443) || (proto === 'http' && +port === 80)
      const url = `${proto}://${hostname}${port && !standard ? `:${port}` : ''}${req.path}`
      recorded.push({ method: req.method, url, path: req.path, headers, body_b64: Buffer.from(bodyHex, 'hex').toString('base64') })
    })
  }
}
interceptAll()

// Settings with choices: the generator ignores a setting's choices (it draws a random string),
// which Segment's settings form would not accept and Sluice refuses at apply time. Both halves
// get the setting's default, or its first choice.
function validSettings(definition, settings) {
  const fields = definition.authentication?.fields || {}
  const normalised = []
  for (const [name, field] of Object.entries(fields)) {
    const choices = (field.choices || []).map((c) => (c && typeof c === 'object' ? c.value : c))
    if (choices.length && !choices.includes(settings[name])) {
      settings[name] = choices.includes(field.default) ? field.default : choices[0]
      normalised.push(name)
    }
  }
  return normalised
}

// What Segment's production passes to every perform (and Sluice's sidecar too): the harness's
// defaults have no statsClient and a logger without warn, which some destinations call
// unguarded (noop's perform reads statsContext.statsClient).
const noop = () => {}
const statsClient = { observe: noop, _name: (n) => n, _tags: (t) => t || [], incr: noop, set: noop, histogram: noop }
const logger = { level: 'warn', name: 'conformance', debug: noop, info: noop, log: noop, warn: noop, error: noop, crit: noop, withTags: noop }

function plainError(err) {
  const out = { name: err?.name || 'Error', message: String(err?.message ?? err) }
  const status = err?.status ?? err?.response?.status
  if (typeof status === 'number') out.status = status
  if (err?.code !== undefined) out.code = String(err.code)
  return out
}

// An OAuth destination (plan: `oauth`, Segment's `settings.oauth` keys): Segment's production
// takes the tokens out of the settings (getDestinationSettings) and hands them to the perform as
// `auth` (getAuthData); Sluice's side gets them in `settings.oauth`, as a user writes them.
let oauth = null
function authOf() {
  if (!oauth) return undefined
  return { accessToken: oauth.access_token, refreshToken: oauth.refresh_token, clientId: oauth.clientId, clientSecret: oauth.clientSecret, refreshTokenUrl: oauth.refresh_token_url }
}
function withOauth(settings) {
  const copy = JSON.parse(JSON.stringify(settings))
  if (oauth) copy.oauth = { ...oauth }
  return copy
}

async function runCase(slug, definition, testDestination, actionSlug, requiredOnly) {
  const seed = `${definition.slug || slug}#${actionSlug}`
  const action = definition.actions[actionSlug]
  const [eventData, settingsData] = generateTestData(seed, definition, action, requiredOnly)
  const normalisedSettings = validSettings(definition, settingsData)
  // testAction runs `perform` (one event); Sluice, as Segment's production, runs `performBatch`
  // when the mapping turns batching on: compare the single-event path (harness.py NORMALISATIONS).
  if (eventData && eventData.enable_batching === true) eventData.enable_batching = false
  const event = createTestEvent({ properties: eventData, ...EVENT_FIELDS })
  const input = {
    slug,
    action: actionSlug,
    variant: requiredOnly ? 'required' : 'all',
    seed,
    event: JSON.parse(JSON.stringify(event)),
    mapping: JSON.parse(JSON.stringify(event.properties)),
    settings: withOauth(settingsData),
    normalised_settings: normalisedSettings
  }
  recorded = []
  let error = null
  try {
    await testDestination.testAction(actionSlug, {
      event,
      mapping: event.properties,
      settings: settingsData,
      auth: authOf(),
      statsContext: { statsClient, tags: [] },
      logger
    })
  } catch (err) {
    error = plainError(err)
  }
  return { ...input, requests: recorded, error }
}

async function runPresetCase(slug, definition, testDestination, presetIndex, settings, eventName) {
  const preset = definition.presets[presetIndex]
  const event = { ...plan.spec_events[eventName], ...EVENT_FIELDS, messageId: `conformance-${eventName}` }
  const parsed = parseFql(preset.subscribe)
  if (parsed.error) throw new Error(`${slug} preset ${preset.name}: ${parsed.error.message}`)
  const input = {
    slug,
    action: preset.partnerAction,
    variant: `spec ${eventName} / ${preset.name}`,
    preset: preset.name,
    trigger: preset.subscribe,
    matched: validate(parsed, event),
    event: JSON.parse(JSON.stringify(event)),
    mapping: JSON.parse(JSON.stringify(preset.mapping || {})),
    settings: withOauth(settings)
  }
  recorded = []
  let error = null
  if (input.matched) {
    try {
      // Destination.executeAction, which testAction wraps: testAction would pass the event
      // through createTestEvent, filling what a spec event leaves out (userId, event) with its
      // test defaults. The other inputs are testAction's.
      const options = {
        mapping: preset.mapping || {},
        settings,
        auth: authOf(),
        features: {},
        statsContext: { statsClient, tags: [] },
        logger,
        transactionContext: {},
        stateContext: {},
        subscriptionMetadata: {}
      }
      const action = definition.actions[preset.partnerAction]
      if (options.mapping.enable_batching === true && typeof action.performBatch === 'function') {
        // Segment's production batches such a subscription (onBatch → executeBatch): a batch
        // of one here, as Sluice sends it. Failures come back as a multistatus, not thrown.
        const results = await Destination.prototype.executeBatch.call(testDestination, preset.partnerAction, { ...options, events: [event] })
        const failed = (results || []).find((r) => r && typeof r.status === 'number' && r.status >= 300)
        if (failed) error = { name: failed.errortype || 'Error', message: failed.errormessage || '', status: failed.status }
      } else {
        await Destination.prototype.executeAction.call(testDestination, preset.partnerAction, { ...options, event })
      }
    } catch (err) {
      error = plainError(err)
    }
  }
  return { ...input, requests: recorded, error }
}

async function runPresetCases(slug, definition, testDestination, presets, out) {
  const first = definition.actions[definition.presets[presets[0]].partnerAction]
  const seed = `${definition.slug || slug}#spec`
  const settings = generateTestData(seed, definition, first, false)[1]
  validSettings(definition, settings)
  for (const presetIndex of presets) {
    for (const eventName of Object.keys(plan.spec_events)) {
      out.push(await runPresetCase(slug, definition, testDestination, presetIndex, settings, eventName))
    }
  }
}

async function main() {
  const out = []
  for (const { slug, actions, presets, oauth: tokens } of plan.destinations) {
    oauth = tokens || null
    let definition
    try {
      definition = require(path.join(DEST_DIR, slug)).default
    } catch (err) {
      out.push({ slug, load_error: plainError(err) })
      continue
    }
    const testDestination = createTestIntegration(definition)
    for (const actionSlug of actions) {
      for (const requiredOnly of [true, false]) {
        out.push(await runCase(slug, definition, testDestination, actionSlug, requiredOnly))
      }
    }
    if (presets && presets.length) await runPresetCases(slug, definition, testDestination, presets, out)
  }
  fs.writeFileSync(outPath, JSON.stringify({ cases: out }))
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err)
    process.exit(1)
  }
)
