// Sluice UI: the few things pages need a script for. No framework, no build step.
// Every value that comes from events is put into the page with textContent, never as HTML.
'use strict'

const $ = (selector, root = document) => root.querySelector(selector)
const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector))

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag)
  for (const [key, value] of Object.entries(attrs)) {
    if (key === 'class') node.className = value
    else if (key === 'text') node.textContent = value
    else node.setAttribute(key, value)
  }
  for (const child of children) node.append(child)
  return node
}

function readJson(id) {
  const node = document.getElementById(id)
  return node ? JSON.parse(node.textContent) : null
}

// --- everywhere: copy buttons, confirmations, tabs -------------------------------------------
function initCopy() {
  for (const button of $$('[data-copy]')) {
    button.addEventListener('click', async () => {
      const text = document.getElementById(button.dataset.copy).textContent
      try {
        await navigator.clipboard.writeText(text)
      } catch {
        const area = el('textarea', { class: 'offscreen' })
        area.value = text
        document.body.append(area)
        area.select()
        document.execCommand('copy')
        area.remove()
      }
      const label = button.textContent
      button.textContent = 'Copied'
      setTimeout(() => { button.textContent = label }, 1500)
    })
  }
}

function initConfirm() {
  for (const button of $$('[data-confirm]')) {
    button.addEventListener('click', (event) => {
      if (!window.confirm(button.dataset.confirm)) event.preventDefault()
    })
  }
}

function initTabs() {
  for (const bar of $$('[data-tabs]')) {
    const panels = $$(':scope > [data-panel]', bar.parentElement)
    for (const button of $$('[data-tab]', bar)) {
      button.addEventListener('click', () => {
        for (const b of $$('[data-tab]', bar)) b.classList.toggle('active', b === button)
        for (const p of panels) p.hidden = p.dataset.panel !== button.dataset.tab
      })
    }
  }
}

// --- JSON as a tree (the debugger's and preview's "pretty" view) -----------------------------
function tree(value) {
  if (value === null || typeof value !== 'object') {
    return el('span', { class: `v ${value === null ? 'null' : typeof value}`, text: JSON.stringify(value) })
  }
  const entries = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value)
  if (!entries.length) return el('span', { class: 'v', text: Array.isArray(value) ? '[]' : '{}' })
  const list = el('ul', { class: 'tree' })
  for (const [key, item] of entries) {
    list.append(el('li', {}, el('span', { class: 'k', text: String(key) }), tree(item)))
  }
  return list
}

// --- the live debugger ----------------------------------------------------------------------
const MAX_EVENTS = 500

function label(e) {
  const p = e.payload || {}
  if (e.type === 'track') return p.event || e.event || '(no name)'
  if (e.type === 'page' || e.type === 'screen') return p.name || `(${e.type})`
  if (e.type === 'identify') return p.userId || p.anonymousId || '(anonymous)'
  if (e.type === 'group') return p.groupId || '(group)'
  if (e.type === 'alias') return `${p.previousId} → ${p.userId}`
  return e.type
}

function clock(ms) {
  return new Date(ms).toISOString().slice(11, 19)
}

function initDebugger() {
  const root = $('#debugger')
  if (!root) return
  const initial = readJson('initial')
  const state = {
    events: [], rejections: [], selected: null, view: 'pretty', paused: false, buffer: [],
    search: '',
  }
  const list = $('#events')
  const live = $('#live')
  const pause = $('#pause')

  function matches(e) {
    if (!state.search) return true
    const haystack = `${e.messageId} ${JSON.stringify(e.payload)}`.toLowerCase()
    return haystack.includes(state.search)
  }

  function renderList() {
    list.replaceChildren()
    for (const e of state.events) {
      if (!matches(e)) continue
      const item = el('li', { tabindex: '0', 'data-seq': String(e.seq) },
        el('span', { class: 'time', text: clock(e.receivedAt) }),
        el('span', { class: `type t-${e.type}`, text: e.type }),
        el('span', { class: 'name', text: label(e) }),
        el('span', { class: 'who dim', text: (e.payload && (e.payload.userId || e.payload.anonymousId)) || '' }))
      if (state.selected && state.selected.seq === e.seq) item.classList.add('selected')
      item.addEventListener('click', () => select(e))
      item.addEventListener('keydown', (k) => { if (k.key === 'Enter') select(e) })
      list.append(item)
    }
    $('#event-count').textContent = String(state.events.length)
  }

  function renderDetail() {
    const e = state.selected
    const body = $('#detail-body')
    if (!e) return
    $('#detail-title').textContent = `${e.type} · ${label(e)} · ${new Date(e.receivedAt).toISOString()}`
    body.replaceChildren(state.view === 'raw'
      ? el('pre', { class: 'raw', text: JSON.stringify(e.payload, null, 2) })
      : tree(e.payload))
    $('#detail-links').hidden = false
    $('#trace-link').href = `/lookup?message_id=${encodeURIComponent(e.messageId)}`
  }

  function select(e) {
    state.selected = e
    for (const li of $$('li', list)) li.classList.toggle('selected', li.dataset.seq === String(e.seq))
    renderDetail()
  }

  function add(batch) {
    for (const e of batch.events) state.events.unshift(e)
    state.events.length = Math.min(state.events.length, MAX_EVENTS)
    for (const r of batch.rejections) state.rejections.unshift(r)
    state.rejections.length = Math.min(state.rejections.length, MAX_EVENTS)
    renderList()
    renderRejections()
  }

  function renderRejections() {
    const body = $('#rejections')
    body.replaceChildren(...state.rejections.map((r) => el('tr', {},
      el('td', { text: new Date(r.receivedAt).toISOString() }),
      el('td', {}, el('code', { text: r.reason })),
      el('td', { text: r.detail }),
      el('td', {}, el('pre', { class: 'raw small', text: r.payload })))))
    $('#rejected-count').textContent = String(state.rejections.length)
  }

  for (const button of $$('[data-view]', root)) {
    button.addEventListener('click', () => {
      state.view = button.dataset.view
      for (const b of $$('[data-view]', root)) b.classList.toggle('active', b === button)
      renderDetail()
    })
  }
  $('#search').addEventListener('input', (ev) => {
    state.search = ev.target.value.trim().toLowerCase()
    renderList()
  })
  pause.addEventListener('click', () => {
    state.paused = !state.paused
    pause.textContent = state.paused ? 'Resume' : 'Pause'
    pause.classList.toggle('primary', state.paused)
    if (!state.paused) {
      for (const batch of state.buffer) add(batch)
      state.buffer = []
      live.textContent = 'live'
    } else {
      live.textContent = 'paused'
    }
  })

  add(initial)
  if (state.events.length) select(state.events[0])
  const url = `${root.dataset.stream}&after=${initial.after}&rejected_after=${initial.rejectedAfter}`
  const source = new EventSource(url)
  source.onopen = () => {
    live.textContent = state.paused ? 'paused' : 'live'
    live.classList.add('on')
  }
  source.onerror = () => {
    live.textContent = 'reconnecting…'
    live.classList.remove('on')
  }
  source.onmessage = (message) => {
    const batch = JSON.parse(message.data)
    if (state.paused) {
      state.buffer.push(batch)
      const waiting = state.buffer.reduce((n, b) => n + b.events.length, 0)
      live.textContent = `paused · ${waiting} new`
    } else {
      add(batch)
    }
  }
}

// --- event delivery: refresh the numbers while the page is open -------------------------------
function initRefresh() {
  const region = $('[data-refresh]')
  if (!region) return
  const every = Number(region.dataset.refresh) || 3000
  setInterval(async () => {
    if (document.hidden) return
    try {
      const response = await fetch(location.href, { headers: { accept: 'text/html' } })
      if (!response.ok) return
      const page = new DOMParser().parseFromString(await response.text(), 'text/html')
      const fresh = page.getElementById(region.id)
      if (fresh) region.replaceChildren(...fresh.childNodes)
    } catch {
      // the server restarts or the network blips: the next round tries again
    }
  }, every)
}

// --- filters and mappings: forms and the live preview ----------------------------------------
function initRules() {
  const preview = $('#preview')
  if (!preview) return
  const samples = readJson('samples') || []
  const presets = readJson('presets') || []
  const eventBox = $('#preview-event')
  const result = $('#preview-result')
  let draft = null
  let source = null
  let timer = null

  const filterForm = $('#filter-form')
  const actionSelect = $('select[name="action"]', filterForm)
  const showWhen = () => {
    for (const part of $$('.when', filterForm)) {
      part.hidden = !part.dataset.when.split(' ').includes(actionSelect.value)
    }
  }
  actionSelect.addEventListener('change', showWhen)
  showWhen()

  // Segment's destinations: the selected action's fields are the ones listed open.
  const mappingAction = $('#mapping-form select[name="action"]')
  const openFields = () => {
    for (const d of $$('#action-fields details[data-action]')) d.open = d.dataset.action === mappingAction.value
  }
  if (mappingAction && $('#action-fields')) mappingAction.addEventListener('change', openFields)

  // "Start a mapping from these defaults": the action's every default, as Segment's editor
  // starts a new mapping.
  for (const button of $$('.use-defaults')) {
    button.addEventListener('click', () => {
      const form = $('#mapping-form')
      form.elements.action.value = button.dataset.action
      form.elements.mapping.value = button.dataset.defaults
      if (!form.elements.name.value) form.elements.name.value = button.closest('details').querySelector('summary').firstChild.textContent.trim()
      form.scrollIntoView({ block: 'start' })
      draft = form
      schedule()
    })
  }

  const picker = $('#preset-picker')
  if (picker) {
    picker.addEventListener('change', () => {
      const preset = presets[Number(picker.value)]
      if (!preset) return
      const form = $('#mapping-form')
      form.elements.name.value = preset.name
      form.elements.action.value = preset.action
      form.elements.trigger.value = preset.trigger
      form.elements.mapping.value = JSON.stringify(preset.mapping, null, 2)
      draft = form
      schedule()
    })
  }

  $('#sample-picker').addEventListener('change', (ev) => {
    const sample = samples[Number(ev.target.value)]
    if (!sample) return
    eventBox.value = JSON.stringify(sample.event, null, 2)
    source = sample.source
    schedule()
  })

  for (const form of $$('form.draft')) {
    form.addEventListener('input', () => { draft = form; schedule() })
    form.addEventListener('change', () => { draft = form; schedule() })
  }
  eventBox.addEventListener('input', () => { source = null; schedule() })
  $('#preview-run').addEventListener('click', run)

  function schedule() {
    clearTimeout(timer)
    timer = setTimeout(run, 300)
  }

  async function run() {
    const body = { event: eventBox.value, source }
    if (draft) {
      body.draft = { kind: draft.dataset.draft, form: Object.fromEntries(new FormData(draft)) }
      $('#preview-mode').textContent = `Previewing your unsaved ${draft.dataset.draft}.`
    }
    let answer
    try {
      const response = await fetch(preview.dataset.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': preview.dataset.csrf },
        body: JSON.stringify(body),
      })
      answer = await response.json()
    } catch (err) {
      answer = { ok: false, error: String(err) }
    }
    show(answer)
  }

  function show(answer) {
    result.replaceChildren()
    if (!answer.ok) {
      result.append(el('p', { class: 'error', text: answer.error }))
      return
    }
    if (!answer.passes) {
      result.append(el('p', { class: 'verdict bad' },
        el('strong', { text: 'Filtered: ' }), `${answer.explanation} `, el('code', { text: answer.reason })))
    } else {
      result.append(el('p', { class: 'verdict ok', text: 'Passes: this destination gets it.' }))
    }
    if (answer.mappings.length) {
      const list = el('ul', { class: 'triggers' })
      for (const m of answer.mappings) {
        list.append(el('li', { class: m.matches ? 'ok' : 'dim' },
          `${m.matches ? '✓' : '✗'} ${m.name} `, el('code', { text: m.action })))
      }
      if (answer.passes) result.append(el('h4', { text: 'Mappings' }), list)
    }
    for (const problem of answer.problems) result.append(el('p', { class: 'error', text: problem }))
    if (answer.passes && !answer.requests.length && !answer.problems.length) {
      result.append(el('p', { class: 'dim', text: 'Nothing to send for this event.' }))
    }
    answer.requests.forEach((r, i) => {
      const headers = Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`).join('\n')
      const shownBody = typeof r.body === 'string' ? r.body : JSON.stringify(r.body, null, 2)
      result.append(
        el('h4', { text: `Request ${i + 1} of ${answer.requests.length}` }),
        el('pre', { class: 'raw request', text: `${r.method} ${r.url}\n${headers}\n\n${shownBody}` }))
    })
  }

  run()
}

// --- the destination catalog: filter by name as one types ----------------------------------
function initCatalogSearch() {
  const box = $('#catalog-search')
  if (!box) return
  const filter = () => {
    const words = box.value.trim().toLowerCase().split(/\s+/).filter(Boolean)
    let shown = 0
    for (const item of $$('[data-search]')) {
      const hit = words.every((w) => item.dataset.search.includes(w))
      item.hidden = !hit
      if (hit) shown += 1
    }
    for (const group of $$('[data-group]')) {
      group.hidden = !$$('[data-search]', group).some((item) => !item.hidden)
    }
    $('#catalog-empty').hidden = shown > 0
  }
  box.addEventListener('input', filter)
  filter()
}

// --- settings shown under a condition (Segment's `depends_on`) --------------------------------
// A field whose condition does not hold is hidden and disabled (not submitted, not required),
// as Segment's settings form hides it.
function initDependsOn() {
  const parts = $$('[data-depends-on]')
  if (!parts.length) return
  const form = parts[0].closest('form')
  const valueOf = (key) => {
    const input = form.elements[`settings.${key}`]
    if (!input) return undefined
    return input.type === 'checkbox' ? input.checked : input.value
  }
  const holds = (c) => {
    const current = valueOf(c.fieldKey)
    const wanted = Array.isArray(c.value) ? c.value : [c.value]
    const same = wanted.some((v) => (typeof v === 'boolean' ? current === v : String(v ?? '') === String(current ?? '')))
    return c.operator === 'is_not' ? !same : same
  }
  const apply = () => {
    for (const part of parts) {
      const rule = JSON.parse(part.dataset.dependsOn)
      const conditions = (rule.conditions || []).filter((c) => c.fieldKey)
      const shown = !conditions.length || (rule.match === 'all' ? conditions.every(holds) : conditions.some(holds))
      part.hidden = !shown
      for (const input of $$('input, select, textarea', part)) input.disabled = !shown
    }
  }
  form.addEventListener('change', apply)
  form.addEventListener('input', apply)
  apply()
}

document.addEventListener('DOMContentLoaded', () => {
  initDependsOn()
  initCopy()
  initConfirm()
  initTabs()
  initDebugger()
  initRefresh()
  initRules()
  initCatalogSearch()
})
