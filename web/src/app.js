// The browser guide: the form, live validation and the outputs. Every judgement and
// every generated text comes from keyshift-core through the wasm package; this file
// only moves values between the page and it.
import init, * as ks from './pkg/keyshift_wasm.js';
import {
  PROVIDERS, TABS, LANGS, LANG_LABELS, SOURCE_FIELDS, ADVANCED_FIELDS,
  defaultState, restore, persistable, toConfig, targetName, fieldId, fieldPath, sourcePath,
  advancedId, advancedPath, hasAdvanced, placeDiagnostics, summarize, fromConfig,
} from './model.js';

const STORE = 'keyshift-guide-v1';
const $ = (id) => document.getElementById(id);

let state = defaultState();
let outputsQueued = false;
let last = { diagnostics: [] };
const diagKeys = new Map();

function load() {
  try {
    const raw = localStorage.getItem(STORE);
    if (raw) state = restore(JSON.parse(raw));
  } catch {
    state = defaultState();
  }
}

function save() {
  try {
    localStorage.setItem(STORE, JSON.stringify(persistable(state)));
  } catch {
    // Storage may be off (private mode): the guide works without it.
  }
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'text') e.textContent = v;
    else if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

/** One labelled field with its help and its diagnostics list. */
function field(id, f, value, onInput) {
  const help = `${id}-help`;
  const diag = `${id}-diag`;
  if (f.kind === 'checkbox') {
    const input = el('input', { type: 'checkbox', id, 'aria-describedby': `${help} ${diag}` });
    input.checked = Boolean(value);
    input.addEventListener('change', () => onInput(input.checked));
    return el('div', { class: 'field check', 'data-field': id },
      input, el('label', { for: id, text: f.label }),
      el('p', { class: 'help', id: help, text: f.help }),
      el('ul', { class: 'diag', id: diag, 'aria-live': 'polite' }));
  }
  const describedBy = [help, ...(f.describedBy ?? []), diag].join(' ');
  const input = f.kind === 'list'
    ? el('textarea', {
      id, name: id, rows: '4', placeholder: f.placeholder, autocomplete: 'off',
      autocapitalize: 'off', spellcheck: 'false', 'aria-describedby': describedBy,
    })
    : el('input', {
      type: 'text', id, name: id, placeholder: f.placeholder, autocomplete: 'off',
      autocapitalize: 'off', spellcheck: 'false', 'aria-describedby': describedBy,
      inputmode: f.kind === 'integer' ? 'numeric' : undefined,
      'data-secret': f.secret ? 'true' : undefined,
    });
  input.value = value ?? '';
  input.addEventListener('input', () => onInput(input.value));
  return el('div', { class: 'field', 'data-field': id },
    el('label', { for: id, text: f.label }),
    input,
    el('p', { class: 'help', id: help, text: f.help }),
    el('ul', { class: 'diag', id: diag, 'aria-live': 'polite' }));
}

function build() {
  const now = $('now-fields');
  for (const f of SOURCE_FIELDS) {
    now.append(field(`f-source-${f.key}`, f, state.source[f.key], (v) => {
      state.source[f.key] = v;
      changed();
    }));
  }
  for (const f of ADVANCED_FIELDS) {
    const spec = f.kind === 'list' ? { ...f, describedBy: ['adv-rotate-help'] } : f;
    $(`adv-${f.section}-fields`).append(field(advancedDomId(f), spec, state.advanced[advancedId(f)], (v) => {
      state.advanced[advancedId(f)] = v;
      changed();
    }));
  }
  $('advanced').open = hasAdvanced(state);

  const exposed = $('f-source-exposed');
  exposed.checked = Boolean(state.source.exposed);
  exposed.addEventListener('change', () => {
    state.source.exposed = exposed.checked;
    changed();
  });

  const tabs = $('tabs');
  const panels = $('panels');
  for (const tab of TABS) {
    const p = PROVIDERS[tab];
    const button = el('button', {
      type: 'button', role: 'tab', id: `tab-${tab}`, 'aria-controls': `panel-${tab}`, text: p.label,
    });
    button.addEventListener('click', () => selectTab(tab, false));
    button.addEventListener('keydown', (e) => {
      const i = TABS.indexOf(tab);
      const to = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[e.key];
      if (to === undefined) return;
      e.preventDefault();
      selectTab(TABS[(to + TABS.length) % TABS.length], true);
    });
    tabs.append(button);

    const panel = el('div', { role: 'tabpanel', id: `panel-${tab}`, 'aria-labelledby': `tab-${tab}`, class: 'panel' });
    panel.append(el('h3', { text: `Target: ${p.title}` }), el('p', { class: 'lead', text: p.intro }));
    panel.append(field(`f-${tab}-name`, {
      label: 'Provider name (optional)',
      placeholder: 'prod',
      help: `Empty for "${tab}"; a name makes a named provider such as "${tab}:prod" (letters, digits, _).`,
    }, state.tab === tab ? state.name : '', (v) => {
      state.name = v;
      changed();
    }));
    // Findings about the provider as a whole (credentials, the target) come first.
    panel.append(el('ul', { class: 'diag', id: `panel-${tab}-diag`, 'aria-live': 'polite' }));
    for (const f of p.fields) {
      const id = `f-${tab}-${f.at}-${f.key}`;
      panel.append(field(id, f, state.p[tab][fieldId(f)], (v) => {
        state.p[tab][fieldId(f)] = v;
        changed();
      }));
    }
    const create = el('details', { class: 'create', id: `create-${tab}` },
      el('summary', { text: `Create the key in ${p.label} (skip if it exists)` }),
      el('ol', { class: 'commands', id: `create-${tab}-list` }));
    panel.append(create);
    panels.append(panel);
  }

  const lang = $('lang');
  for (const l of LANGS) lang.append(el('option', { value: l, text: LANG_LABELS[l] }));
  lang.value = state.lang;
  lang.addEventListener('change', () => {
    state.lang = lang.value;
    save();
    queueOutputs();
  });
  for (const r of document.querySelectorAll('input[name=stage]')) {
    r.checked = r.value === state.stage;
    r.addEventListener('change', () => {
      if (!r.checked) return;
      state.stage = r.value;
      save();
      queueOutputs();
    });
  }

  $('import-load').addEventListener('click', importToml);
  $('reset').addEventListener('click', () => {
    const { lang, stage } = state;
    state = defaultState();
    Object.assign(state, { lang, stage });
    $('advanced').open = false;
    syncForm();
    changed();
    status('Started over.');
  });
  $('copy-toml').addEventListener('click', () => copy($('toml').textContent, 'keyshift.toml'));
  $('download-toml').addEventListener('click', download);
  $('copy-code').addEventListener('click', () => copy($('code').textContent, 'driver code'));
  $('copy-policy').addEventListener('click', () => copy($('policy-doc').textContent, 'policy'));
  $('copy-plan').addEventListener('click', () => copy(planCommands(), 'plan commands'));
  showTab(state.tab);
}

/** Loads a pasted keyshift.toml into the form (parsed by core); the text itself is
 * neither kept nor stored. */
function importToml() {
  const area = $('import-text');
  const parsed = ks.parseToml(area.value);
  if (parsed.diagnostics.some((d) => d.code === 'KS-CFG-001')) {
    setDiags('import-diag', parsed.diagnostics);
    return;
  }
  const { state: next, dropped } = fromConfig(parsed.config);
  next.lang = state.lang;
  next.stage = state.stage;
  state = next;
  area.value = '';
  setDiags('import-diag', []);
  syncForm();
  changed();
  status(dropped.length ? `Loaded; not shown in the form: ${dropped.join(', ')}.` : 'Loaded keyshift.toml into the form.');
}

/** The element id of an advanced field: `f-rewrap-batchSize`, `f-rotate-collections`. */
function advancedDomId(f) {
  return `f-${f.section}-${f.key}`;
}

/** Puts the state's values into every input (after an import). */
function syncForm() {
  for (const f of ADVANCED_FIELDS) $(advancedDomId(f)).value = state.advanced[advancedId(f)] ?? '';
  if (hasAdvanced(state)) $('advanced').open = true;
  for (const f of SOURCE_FIELDS) $(`f-source-${f.key}`).value = state.source[f.key] ?? '';
  $('f-source-exposed').checked = Boolean(state.source.exposed);
  for (const tab of TABS) {
    $(`f-${tab}-name`).value = tab === state.tab ? state.name : '';
    for (const f of PROVIDERS[tab].fields) {
      const input = $(`f-${tab}-${f.at}-${f.key}`);
      if (f.kind === 'checkbox') input.checked = Boolean(state.p[tab][fieldId(f)]);
      else input.value = state.p[tab][fieldId(f)] ?? '';
    }
  }
  showTab(state.tab);
}

function showTab(tab) {
  for (const t of TABS) {
    const selected = t === tab;
    const b = $(`tab-${t}`);
    b.setAttribute('aria-selected', String(selected));
    b.tabIndex = selected ? 0 : -1;
    $(`panel-${t}`).hidden = !selected;
  }
}

function selectTab(tab, focus) {
  if (tab !== state.tab) {
    state.tab = tab;
    // The name belongs to the target; keep what the new tab's field shows.
    state.name = $(`f-${tab}-name`).value;
    changed();
  }
  showTab(tab);
  if (focus) $(`tab-${tab}`).focus();
}

/** Every keystroke: validate at once (core via wasm), render diagnostics, remember
 * the state; outputs follow on the next frame so typing never waits for them. */
function changed() {
  validateNow();
  save();
  queueOutputs();
}

function validateNow() {
  const result = ks.validate(toConfig(state));
  last = result;
  renderDiagnostics(result.diagnostics);
  renderRotateHelp();
}

/** Says when the collections list is used: only in a rotation (an exposed key). */
function renderRotateHelp() {
  const help = $('adv-rotate-help');
  const text = state.source.exposed
    ? 'The local key is marked exposed, so the plan rotates: keyshift rotate re-encrypts the collections listed here, and keyshift retire then checks every collection before deleting an old key.'
    : 'Used only when the local master key may have been exposed (the checkbox in step 1): the plan then rotates the keys instead of rewrapping them. Until then this list is written to keyshift.toml but the plan does not use it.';
  if (help.textContent !== text) help.textContent = text;
}

function diagItem(d) {
  const li = el('li', { class: d.severity, 'data-code': d.code });
  li.append(el('span', { class: 'sev', text: d.severity === 'error' ? 'Error' : 'Warning' }), ' ',
    el('code', { text: d.code }), ' ', el('span', { class: 'msg', text: d.message }));
  if (d.hint) li.append(el('span', { class: 'hint', text: d.hint }));
  return li;
}

/** Replaces a list's items only when its diagnostics changed, so screen readers hear
 * news, not every keystroke. */
function setDiags(listId, diags) {
  const key = diags.map((d) => `${d.code}|${d.path}|${d.message}`).join('\n');
  if (diagKeys.get(listId) === key) return;
  diagKeys.set(listId, key);
  const list = $(listId);
  list.replaceChildren(...diags.map(diagItem));
  const wrap = list.closest('.field');
  if (wrap) {
    const worst = diags.some((d) => d.severity === 'error') ? 'error' : diags.length ? 'warning' : '';
    wrap.dataset.state = worst;
    const input = wrap.querySelector('input, textarea');
    if (input) input.setAttribute('aria-invalid', String(worst === 'error'));
  }
}

function renderDiagnostics(diagnostics) {
  const tab = state.tab;
  const name = targetName(state);
  const lists = new Map(); // path → list id
  for (const f of SOURCE_FIELDS) lists.set(sourcePath(f.key), `f-source-${f.key}-diag`);
  lists.set(sourcePath('exposed'), 'f-source-exposed-diag');
  for (const f of PROVIDERS[tab].fields) lists.set(fieldPath(state, f), `f-${tab}-${f.at}-${f.key}-diag`);
  for (const f of ADVANCED_FIELDS) lists.set(advancedPath(f), `${advancedDomId(f)}-diag`);
  const sections = new Map([
    // A list's entries (`/rotate/collections/2`) go beside the list.
    ...ADVANCED_FIELDS.filter((f) => f.kind === 'list').map((f) => [advancedPath(f), `${advancedDomId(f)}-diag`]),
    ['/rewrap', 'advanced-diag'],
    ['/rotate', 'advanced-diag'],
    ['/keyVault', 'now-diag'],
    ['/kmsProviders/local', 'now-diag'],
    ['/kmsProviders', `panel-${tab}-diag`],
    ['/tlsOptions', `panel-${tab}-diag`],
    ['/target', `panel-${tab}-diag`],
  ]);
  // A bad provider name belongs beside the name field.
  const nameDiags = diagnostics.filter((d) => d.code === 'KS-PRV-002');
  const rest0 = diagnostics.filter((d) => d.code !== 'KS-PRV-002');
  const { byPath, rest } = placeDiagnostics(rest0, lists.keys(), sections.keys());
  const out = new Map();
  for (const id of [...lists.values(), ...sections.values()]) out.set(id, []);
  for (const [path, ds] of byPath) {
    const id = lists.get(path) ?? sections.get(path);
    out.get(id).push(...ds);
  }
  for (const [id, ds] of out) setDiags(id, ds);
  const where = new Map();
  for (const [id, ds] of out) for (const d of ds) where.set(d, id);
  for (const d of nameDiags) where.set(d, `f-${tab}-name-diag`);
  renderFindings(diagnostics, where);
  for (const t of TABS) {
    setDiags(`f-${t}-name-diag`, t === tab ? nameDiags : []);
    if (t !== tab) {
      for (const f of PROVIDERS[t].fields) setDiags(`f-${t}-${f.at}-${f.key}-diag`, []);
      setDiags(`panel-${t}-diag`, []);
    }
  }
  setDiags('other-diags', rest);
  renderAdvancedState(diagnostics);
  const { errors, warnings } = summarize(diagnostics);
  const summary = $('summary');
  const text = errors + warnings === 0
    ? `No problems: ${name} is ready.`
    : `${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}`;
  if (summary.textContent !== text) summary.textContent = text;
  summary.dataset.errors = String(errors);
  summary.dataset.warnings = String(warnings);
  summary.className = `summary ${errors ? 'error' : warnings ? 'warning' : 'ok'}`;
}

/** The collapsed Advanced section's summary says how many fields are set and what is
 * wrong inside, so nothing it holds goes unnoticed. */
function renderAdvancedState(diagnostics) {
  const set = ADVANCED_FIELDS.filter((f) => (state.advanced[advancedId(f)] ?? '').trim()).length;
  const inside = diagnostics.filter((d) => /^\/(rewrap|rotate)(\/|$)/.test(d.path));
  const { errors, warnings } = summarize(inside);
  const parts = [];
  if (set) parts.push(`${set} set`);
  if (errors) parts.push(`${errors} error${errors === 1 ? '' : 's'}`);
  if (warnings) parts.push(`${warnings} warning${warnings === 1 ? '' : 's'}`);
  const text = parts.length ? `(${parts.join(', ')})` : '';
  const span = $('advanced-state');
  if (span.textContent !== text) span.textContent = text;
  span.className = `adv-state ${errors ? 'error' : warnings ? 'warning' : ''}`;
}

/** The header's list of every finding, each a button that moves focus to its field. */
function renderFindings(diagnostics, where) {
  const key = diagnostics.map((d) => `${d.code}|${d.path}|${d.message}`).join('\n');
  if (renderFindings.key === key) return;
  renderFindings.key = key;
  const items = diagnostics.map((d) => {
    const listId = where.get(d);
    const button = el('button', { type: 'button', class: `link ${d.severity}`, 'data-code': d.code },
      `${d.severity === 'error' ? 'Error' : 'Warning'} ${d.code}: ${d.message}`);
    button.addEventListener('click', () => {
      const list = listId && $(listId);
      const target = list?.closest('.field')?.querySelector('input, textarea')
        ?? list?.closest('section, .panel, details.advanced')?.querySelector('input, textarea');
      // A field inside a collapsed section cannot take focus: open it first.
      const closed = target?.closest('details:not([open])');
      if (closed) closed.open = true;
      if (target) target.focus();
    });
    return el('li', {}, button);
  });
  $('all-diags').replaceChildren(...items);
  $('findings').hidden = items.length === 0;
}

function queueOutputs() {
  if (outputsQueued) return;
  outputsQueued = true;
  requestAnimationFrame(() => {
    outputsQueued = false;
    renderOutputs();
  });
}

function commandItem(c) {
  return el('li', {}, el('p', { text: c.why }), el('pre', { tabindex: '0' }, el('code', { text: c.command })));
}

function renderOutputs() {
  const config = last.config ?? toConfig(state);
  try {
    $('toml').textContent = ks.toToml(config);
  } catch (e) {
    $('toml').textContent = `# ${e.message}`;
  }
  try {
    const s = ks.generate(config, state.lang, state.stage);
    $('code').textContent = s.code;
    $('code-file').textContent = `Suggested file: ${s.filename}`;
  } catch (e) {
    $('code').textContent = e.message;
    $('code-file').textContent = '';
  }
  const pol = ks.policy(config);
  $('policy-title').textContent = pol ? pol.title : 'No remote target yet.';
  $('policy-doc').textContent = pol ? pol.document || pol.notes.join('\n') : '';
  $('policy-grant').replaceChildren(...(pol ? pol.grant.map(commandItem) : []));
  $('policy-notes').replaceChildren(...(pol ? pol.notes.map((n) => el('li', { text: n })) : []));
  for (const t of TABS) {
    const items = pol && pol.provider === t ? pol.createKey.map(commandItem) : [];
    $(`create-${t}-list`).replaceChildren(...items);
    $(`create-${t}`).hidden = items.length === 0;
  }
  const plan = ks.plan(config);
  $('plan-summary').textContent = plan.summary;
  $('plan-risks').replaceChildren(...plan.risks.map((r) =>
    el('li', { class: r.level, 'data-risk': r.id }, el('strong', { text: `${r.level}: ` }), r.message)));
  const scanned = plan.mode === 'rotate' ? config.rotate?.collections : undefined;
  const steps = (list) => list.map((s) => el('li', { 'data-step': s.id },
    el('h4', { text: s.title }), el('p', { text: s.why }),
    ...(s.commands.length ? [el('pre', { tabindex: '0' }, el('code', { text: s.commands.join('\n') }))] : []),
    ...(scanned?.length && ROTATE_SCOPED.includes(s.id) ? [scopeNote(scanned)] : [])));
  $('plan-steps').replaceChildren(...steps(plan.steps));
  $('plan-rollback').replaceChildren(...steps(plan.rollback));
  document.body.dataset.ready = 'true';
}

/** Plan steps whose `keyshift rotate` runs over `[rotate] collections`. */
const ROTATE_SCOPED = ['rotate-dry-run', 'rotate'];

/** The collections a rotate step scans, from the configuration (in place of
 * --all-collections). */
function scopeNote(collections) {
  const p = el('p', { class: 'scope' }, `Scans the ${collections.length} collection${collections.length === 1 ? '' : 's'} listed in [rotate]: `);
  collections.forEach((ns, i) => p.append(...(i ? [', '] : []), el('code', { 'data-ns': ns, text: ns })));
  return p;
}

function planCommands() {
  return [...document.querySelectorAll('#plan-steps > li')].map((li) => {
    const title = li.querySelector('h4').textContent;
    const code = li.querySelector('pre code');
    return `# ${title}\n${code ? code.textContent : ''}`.trim();
  }).join('\n\n') + '\n';
}

function status(message) {
  const s = $('status');
  s.textContent = message;
  s.dataset.shown = 'true';
  clearTimeout(status.timer);
  status.timer = setTimeout(() => { s.dataset.shown = 'false'; }, 2500);
}

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    status(`Copied ${what}.`);
  } catch {
    status(`Could not copy ${what}: select the text and press Ctrl+C.`);
  }
}

function download() {
  const blob = new Blob([$('toml').textContent], { type: 'application/toml' });
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: 'keyshift.toml' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  status('Downloaded keyshift.toml.');
}

async function main() {
  await init();
  load();
  build();
  $('version').textContent = ks.version();
  validateNow();
  renderOutputs();
}

main().catch((e) => {
  $('summary').textContent = `The guide could not start: ${e.message}`;
});
