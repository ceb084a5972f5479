// Describes the installed @segment/browser-destinations for Sluice's device-mode catalogue:
// each destination's names, settings fields, actions (fields, default subscription, lifecycle),
// presets, and the built bundle analytics.js loads (file and the global it defines).
// Usage: node describe.js <folder of the installed package>  (prints JSON on stdout)
'use strict'
const fs = require('fs')
const path = require('path')

const root = path.resolve(process.argv[2])
const web = path.join(root, 'dist', 'web')
const bundles = JSON.parse(fs.readFileSync(path.join(web, 'manifest-latest.json'), 'utf8'))
const { manifest } = require(path.join(root, 'dist', 'cjs', 'destinations', 'index.js'))

function field(f) {
  const out = { label: f.label || null, type: f.type || 'string', required: !!f.required }
  if (f.default !== undefined) out.default = f.default
  if (Array.isArray(f.choices)) {
    out.choices = f.choices.map((c) => (c !== null && typeof c === 'object' ? c.value : c))
  }
  if (f.multiple) out.multiple = true
  if (f.description) out.description = String(f.description)
  return out
}

function fields(record) {
  return Object.fromEntries(Object.entries(record || {}).map(([k, f]) => [k, field(f)]))
}

const destinations = []
const errors = []
for (const [id, { definition, directory }] of Object.entries(manifest)) {
  const file = bundles[directory]
  if (!file) {
    errors.push({ directory, error: 'no built bundle in dist/web/manifest-latest.json' })
    continue
  }
  // webpack's `library: '[name]Destination'`, `libraryTarget: 'window'`: the global is set
  // at the end of the bundle.
  const library = directory + 'Destination'
  const code = fs.readFileSync(path.join(web, directory, file), 'utf8')
  if (!code.includes('window["' + library + '"]=') && !code.includes('window.' + library + '=')) {
    errors.push({ directory, error: 'the bundle does not define window["' + library + '"]' })
    continue
  }
  const actions = {}
  for (const [key, a] of Object.entries(definition.actions || {})) {
    actions[key] = {
      title: a.title || key,
      description: a.description || null,
      default_subscription: a.defaultSubscription || null,
      lifecycle: a.lifecycleHook || 'destination',
      hidden: !!a.hidden,
      fields: fields(a.fields)
    }
  }
  destinations.push({
    slug: directory,
    metadata_id: id,
    name: definition.name,
    description: definition.description || null,
    bundle: directory + '/' + file,
    library,
    settings: fields(definition.settings),
    actions,
    presets: (definition.presets || []).map((p) => ({
      name: p.name,
      partner_action: p.partnerAction,
      subscribe: p.subscribe || null,
      mapping: p.mapping || {}
    }))
  })
}
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
process.stdout.write(JSON.stringify({ package: pkg.version, node: process.version, destinations, errors }))
