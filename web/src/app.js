// The browser guide: the form, live validation and the outputs. Every judgement of the
// configuration and every generated text comes from keyshift-core through the wasm
// package; this file only moves values between the page and it.
import init, * as ks from './pkg/keyshift_wasm.js';
import {
  PROVIDERS, TABS, LANGS, LANG_LABELS, KEY_VAULT_FIELDS, ADVANCED_FIELDS, SOURCE_TYPES, SOURCE_PROVIDERS,
  RETIRE_FIELDS, MAX_SOURCES, defaultState, restore, persistable, toConfig, targetName, sourceName, fieldId,
  fieldPath, sourceFieldPath, keyVaultPath, deploymentPath, advancedId, advancedPath, hasAdvanced, anyExposed,
  placeDiagnostics, summarize, fromConfig, formDiagnostics, secretFree, newSource, newDeployment, seg, unpointer,
} from './model.js';

const STORE = 'keyshift-guide-v1';
const $ = (id) => document.getElementById(id);

let state = defaultState();
let outputsQueued = false;
/** Core's last judgement of the form (`config`), with the form's own findings first. */
let last = { diagnostics: [] };
/** What the outputs were made from: `secretFree`'s result. */
let handed = { moved: [], withheld: [] };
const diagKeys = new Map();
/** Inputs the user has reached (typed in, or left): their findings show even when empty. */
const touched = new Set();
/** Set once the user asks for output (copy, download) or loads a file: every finding shows. */
let revealAll = false;
/** JSON pointer → the id of the input it belongs to (for labels and "use references"). */
let pathInputs = new Map();

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

/** One labelled field with its help and its diagnostics list. A checkbox reports
 * `true` or `''` (unset: left out of the file). */
function field(id, f, value, onInput) {
  const help = `${id}-help`;
  const diag = `${id}-diag`;
  if (f.kind === 'checkbox') {
    const input = el('input', { type: 'checkbox', id, 'aria-describedby': `${help} ${diag}` });
    input.checked = value === true;
    input.addEventListener('change', () => {
      touched.add(id);
      onInput(input.checked ? true : '');
    });
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
  input.addEventListener('input', () => {
    touched.add(id);
    onInput(input.value);
  });
  // Leaving a field counts as reaching it: a required one that is still empty says so.
  input.addEventListener('blur', () => {
    if (touched.has(id)) return;
    touched.add(id);
    renderDiagnostics();
  });
  return el('div', { class: 'field', 'data-field': id },
    el('label', { for: id, text: f.label }),
    input,
    el('p', { class: 'help', id: help, text: f.help }),
    el('ul', { class: 'diag', id: diag, 'aria-live': 'polite' }));
}

/** The id prefix of the I-th current master key: `f-source`, `f-source2`, … */
function sourcePrefix(i) {
  return i === 0 ? 'f-source' : `f-source${i + 1}`;
}

/** The input id of a current master key's field: `f-source-key` (local),
 * `f-source-aws-cred-accessKeyId`. */
function sourceFieldDomId(i, type, f) {
  const pre = sourcePrefix(i);
  return type === 'local' ? `${pre}-${f.key}` : `${pre}-${type}-${f.at}-${f.key}`;
}

/** One current master key: its provider type, name, findings and fields. */
function sourceBlock(src, i) {
  const pre = sourcePrefix(i);
  const many = state.sources.length > 1;
  const box = el('fieldset', { class: 'source', id: `${pre}-box`, 'data-source': String(i) });
  box.append(el('legend', { text: many ? `Current master key ${i + 1}` : 'Current master key' }));
  const typeId = `${pre}-type`;
  const select = el('select', { id: typeId, 'aria-describedby': `${typeId}-help` });
  for (const t of SOURCE_TYPES) select.append(el('option', { value: t, text: SOURCE_PROVIDERS[t].label }));
  select.value = src.type;
  select.addEventListener('change', () => {
    src.type = select.value;
    renderSources();
    changed();
    $(typeId).focus();
  });
  box.append(el('div', { class: 'field' },
    el('label', { for: typeId, text: 'Where the keys are now' }), select,
    el('p', { class: 'help', id: `${typeId}-help`, text: 'The provider whose master key wraps your data encryption keys today: a local key, or a KMS when you move between KMS keys.' })));
  box.append(el('p', { class: 'lead', text: SOURCE_PROVIDERS[src.type].intro }));
  box.append(field(`${pre}-name`, {
    label: 'Provider name (optional)',
    placeholder: 'legacy',
    help: `Empty for "${src.type}"; a name makes a named provider such as "${src.type}:legacy" (letters, digits, _), as your applications call it.`,
  }, src.name, (v) => {
    src.name = v;
    changed();
  }));
  // Findings about the provider as a whole (credentials, TLS) come before its fields.
  box.append(el('ul', { class: 'diag', id: `${pre}-diag`, 'aria-live': 'polite' }));
  for (const f of SOURCE_PROVIDERS[src.type].fields) {
    box.append(field(sourceFieldDomId(i, src.type, f), f, src.p[src.type][fieldId(f)], (v) => {
      src.p[src.type][fieldId(f)] = v;
      changed();
    }));
  }
  if (many) {
    const remove = el('button', { type: 'button', class: 'secondary', id: `${pre}-remove`, text: 'Remove this master key' });
    remove.addEventListener('click', () => {
      state.sources.splice(i, 1);
      renderSources();
      changed();
      $('add-source').focus();
    });
    box.append(remove);
  }
  return box;
}

function renderSources() {
  $('sources').replaceChildren(...state.sources.map(sourceBlock));
  const add = $('add-source');
  add.textContent = state.sources.length ? 'Add another current master key' : 'Add the current master key';
  add.hidden = state.sources.length >= MAX_SOURCES;
  diagKeys.clear();
}

/** One `[retire]` deployment: name, connection string, remove. */
function deploymentRow(d, i) {
  const pre = `f-retire-d${i}`;
  const row = el('div', { class: 'deployment', id: `${pre}-row`, role: 'group', 'aria-label': `Deployment ${i + 1}` });
  row.append(field(`${pre}-name`, RETIRE_FIELDS.name, d.name, (v) => {
    d.name = v;
    changed();
  }));
  row.append(field(`${pre}-uri`, RETIRE_FIELDS.uri, d.uri, (v) => {
    d.uri = v;
    changed();
  }));
  const remove = el('button', { type: 'button', class: 'secondary', id: `${pre}-remove`, 'aria-label': `Remove deployment ${i + 1}`, text: 'Remove' });
  remove.addEventListener('click', () => {
    state.retire.deployments.splice(i, 1);
    if (!state.retire.deployments.length) state.retire.deployments.push(newDeployment());
    renderDeployments();
    changed();
    $('add-deployment').focus();
  });
  row.append(remove);
  return row;
}

function renderDeployments() {
  $('retire-deployments').replaceChildren(...state.retire.deployments.map(deploymentRow));
  diagKeys.clear();
}

function build() {
  const now = $('now-fields');
  for (const f of KEY_VAULT_FIELDS) {
    now.append(field(`f-source-${f.key}`, f, state.keyVault[f.key], (v) => {
      state.keyVault[f.key] = v;
      changed();
    }));
  }
  renderSources();
  $('add-source').addEventListener('click', () => {
    if (state.sources.length >= MAX_SOURCES) return;
    // A second current key is most often an older KMS key beside the local one.
    state.sources.push(newSource(state.sources.length ? 'aws' : 'local'));
    renderSources();
    changed();
    $(`${sourcePrefix(state.sources.length - 1)}-type`).focus();
  });

  for (const f of ADVANCED_FIELDS) {
    const spec = f.kind === 'list' ? { ...f, describedBy: ['adv-rotate-help'] } : f;
    $(`adv-${f.section}-fields`).append(field(advancedDomId(f), spec, state.advanced[advancedId(f)], (v) => {
      state.advanced[advancedId(f)] = v;
      changed();
    }));
  }
  renderDeployments();
  $('add-deployment').addEventListener('click', () => {
    state.retire.deployments.push(newDeployment());
    renderDeployments();
    changed();
    $(`f-retire-d${state.retire.deployments.length - 1}-name`).focus();
  });
  $('adv-retire-listed').append(field('f-retire-allDeploymentsListed', RETIRE_FIELDS.listed, state.retire.listed, (v) => {
    state.retire.listed = v;
    changed();
  }));
  $('advanced').open = hasAdvanced(state);

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
    touched.clear();
    revealAll = false;
    $('advanced').open = false;
    $('import-result').textContent = '';
    syncForm();
    changed();
    status('Started over.');
  });
  $('copy-toml').addEventListener('click', () => handOut('copy'));
  $('download-toml').addEventListener('click', () => handOut('download'));
  $('use-references').addEventListener('click', useReferences);
  $('copy-code').addEventListener('click', () => copy($('code').textContent, 'driver code'));
  $('copy-policy').addEventListener('click', () => copy($('policy-doc').textContent, 'policy'));
  $('copy-plan').addEventListener('click', () => copy(planCommands(), 'plan commands'));
  showTab(state.tab);
}

/** Loads a pasted keyshift.toml into the form (parsed by core); the text itself is
 * neither kept nor stored. What was loaded, and anything the form could not hold, is
 * said beside the button and stays there. */
function importToml() {
  const area = $('import-text');
  const parsed = ks.parseToml(area.value);
  if (parsed.diagnostics.some((d) => d.code === 'KS-CFG-001')) {
    setImportDiags(parsed.diagnostics);
    $('import-result').textContent = '';
    return;
  }
  const { state: next, dropped } = fromConfig(parsed.config);
  next.lang = state.lang;
  next.stage = state.stage;
  state = next;
  area.value = '';
  setImportDiags([]);
  // A loaded file is judged whole: every finding shows at once.
  touched.clear();
  revealAll = true;
  syncForm();
  changed();
  const sources = state.sources.map(sourceName);
  const loaded = `Loaded into the form: ${sources.length ? sources.join(' and ') : 'no current master key'} → ${targetName(state)}`
    + `${hasAdvanced(state) ? ', with the Advanced settings' : ''}.`;
  const result = $('import-result');
  result.replaceChildren(loaded, ' ', dropped.length
    ? el('strong', { text: `Not in the form (left out of keyshift.toml below): ${dropped.join('; ')}.` })
    : 'Everything the file holds is in the form.');
  result.dataset.dropped = String(dropped.length);
}

function setImportDiags(diags) {
  $('import-diag').replaceChildren(...diags.map(diagItem));
}

/** The element id of an advanced field: `f-rewrap-batchSize`, `f-rotate-collections`. */
function advancedDomId(f) {
  return `f-${f.section}-${f.key}`;
}

/** Puts the state's values into every input (after an import or a reset). */
function syncForm() {
  for (const f of ADVANCED_FIELDS) $(advancedDomId(f)).value = state.advanced[advancedId(f)] ?? '';
  if (hasAdvanced(state)) $('advanced').open = true;
  for (const f of KEY_VAULT_FIELDS) $(`f-source-${f.key}`).value = state.keyVault[f.key] ?? '';
  renderSources();
  renderDeployments();
  $('f-retire-allDeploymentsListed').checked = state.retire.listed === true;
  for (const tab of TABS) {
    $(`f-${tab}-name`).value = tab === state.tab ? state.name : '';
    for (const f of PROVIDERS[tab].fields) {
      const input = $(`f-${tab}-${f.at}-${f.key}`);
      if (f.kind === 'checkbox') input.checked = state.p[tab][fieldId(f)] === true;
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
  last = { config: result.config, diagnostics: [...formDiagnostics(state), ...result.diagnostics] };
  renderDiagnostics();
  renderRotateHelp();
}

/** Says when the collections list is used: only in a rotation (an exposed key). */
function renderRotateHelp() {
  const help = $('adv-rotate-help');
  const text = anyExposed(state)
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
  const list = $(listId);
  if (!list) return;
  const key = diags.map((d) => `${d.code}|${d.path}|${d.message}`).join('\n');
  if (diagKeys.get(listId) === key) return;
  diagKeys.set(listId, key);
  list.replaceChildren(...diags.map(diagItem));
  const wrap = list.closest('.field');
  if (wrap) {
    const worst = diags.some((d) => d.severity === 'error') ? 'error' : diags.length ? 'warning' : '';
    wrap.dataset.state = worst;
    const input = wrap.querySelector('input, textarea, select');
    if (input) input.setAttribute('aria-invalid', String(worst === 'error'));
  }
}

/** Where every diagnostic of the current form goes: `{lists, sections, names, routes}`
 * (JSON pointer or form path → list id). */
function placement() {
  const lists = new Map();
  const sections = new Map();
  const names = new Map(); // provider → its name field's list (KS-PRV-002)
  const retireNames = new Map(); // deployment → its name field's list (KS-RET-001)
  for (const f of KEY_VAULT_FIELDS) lists.set(keyVaultPath(f.key), `f-source-${f.key}-diag`);
  const tab = state.tab;
  const target = targetName(state);
  const seen = new Set([target]);
  state.sources.forEach((src, i) => {
    const pre = sourcePrefix(i);
    const name = sourceName(src);
    lists.set(`#source/${i}/name`, `${pre}-name-diag`);
    if (seen.has(name)) return; // not written; the form's own finding says why
    seen.add(name);
    for (const f of SOURCE_PROVIDERS[src.type].fields) lists.set(sourceFieldPath(src, f), `${sourceFieldDomId(i, src.type, f)}-diag`);
    sections.set(`/kmsProviders${seg(name)}`, `${pre}-diag`);
    sections.set(`/tlsOptions${seg(name)}`, `${pre}-diag`);
    names.set(`/kmsProviders${seg(name)}`, `${pre}-name-diag`);
  });
  for (const f of PROVIDERS[tab].fields) lists.set(fieldPath(state, f), `f-${tab}-${f.at}-${f.key}-diag`);
  sections.set(`/kmsProviders${seg(target)}`, `panel-${tab}-diag`);
  sections.set(`/tlsOptions${seg(target)}`, `panel-${tab}-diag`);
  names.set(`/kmsProviders${seg(target)}`, `f-${tab}-name-diag`);
  for (const f of ADVANCED_FIELDS) lists.set(advancedPath(f), `${advancedDomId(f)}-diag`);
  // A list's entries (`/rotate/collections/2`) go beside the list.
  for (const f of ADVANCED_FIELDS.filter((x) => x.kind === 'list')) sections.set(advancedPath(f), `${advancedDomId(f)}-diag`);
  const taken = new Set();
  state.retire.deployments.forEach((d, i) => {
    const pre = `f-retire-d${i}`;
    lists.set(`#retire/${i}/name`, `${pre}-name-diag`);
    const n = d.name.trim();
    if ((!n && !d.uri.trim()) || taken.has(n)) return;
    taken.add(n);
    // Core reports name and connection string at the same path; the name's own
    // finding goes beside the name, the rest beside the connection string.
    lists.set(deploymentPath(n), `${pre}-uri-diag`);
    retireNames.set(deploymentPath(n), `${pre}-name-diag`);
  });
  lists.set('/retire/allDeploymentsListed', 'f-retire-allDeploymentsListed-diag');
  for (const [p, id] of [
    ['/rewrap', 'advanced-diag'], ['/rotate', 'advanced-diag'], ['/retire', 'advanced-diag'],
    ['/keyVault', 'now-diag'], ['/kmsProviders', `panel-${tab}-diag`], ['/tlsOptions', `panel-${tab}-diag`],
    ['/target', `panel-${tab}-diag`],
  ]) if (!sections.has(p)) sections.set(p, id);
  return { lists, sections, names, retireNames };
}

/** Whether the findings in a list may show: a list beside an empty field the user has
 * not reached yet waits (a fresh page does not open with errors), unless the user
 * asked for output or loaded a file. Lists of sections always show. */
function reached(listId) {
  if (revealAll) return true;
  if (!listId.endsWith('-diag')) return true;
  const inputId = listId.slice(0, -'-diag'.length);
  const input = $(inputId);
  if (!input || !['INPUT', 'TEXTAREA'].includes(input.tagName) || input.type === 'checkbox') return true;
  return touched.has(inputId) || input.value.trim() !== '';
}

function renderDiagnostics() {
  const diagnostics = last.diagnostics;
  const { lists, sections, names, retireNames } = placement();
  pathInputs = new Map([...lists].map(([p, id]) => [p, id.replace(/-diag$/, '')]));
  const named = [];
  const retireNamed = [];
  const others = [];
  for (const d of diagnostics) {
    if (d.code === 'KS-PRV-002' && names.has(d.path)) named.push(d);
    else if (d.code === 'KS-RET-001' && retireNames.has(d.path)) retireNamed.push(d);
    else others.push(d);
  }
  const { byPath, rest } = placeDiagnostics(others, lists.keys(), sections.keys());
  const out = new Map([['other-diags', []]]);
  const add = (id, d) => {
    if (!out.has(id)) out.set(id, []);
    out.get(id).push(d);
  };
  for (const [path, ds] of byPath) for (const d of ds) add(lists.get(path) ?? sections.get(path), d);
  for (const d of named) add(names.get(d.path), d);
  for (const d of retireNamed) add(retireNames.get(d.path), d);
  for (const d of rest) add('other-diags', d);
  const where = new Map();
  let held = 0;
  for (const [id, all] of out) {
    // The form's own findings (paths `#…`) come from what the user chose: always shown.
    const ds = reached(id) ? all : all.filter((d) => d.path.startsWith('#'));
    if (ds.length < all.length) held += 1;
    out.set(id, ds);
    for (const d of ds) where.set(d, id);
  }
  // Every list that showed something before and has nothing now is emptied.
  for (const id of [...diagKeys.keys()]) if (!out.has(id)) setDiags(id, []);
  for (const [id, ds] of out) setDiags(id, ds);
  const ordered = diagnostics.filter((d) => where.has(d));
  renderFindings(ordered, where);
  renderAdvancedState(ordered);
  const { errors, warnings } = summarize(ordered);
  const summary = $('summary');
  const parts = [];
  if (errors) parts.push(`${errors} error${errors === 1 ? '' : 's'}`);
  if (warnings) parts.push(`${warnings} warning${warnings === 1 ? '' : 's'}`);
  if (held) parts.push(`${held} field${held === 1 ? '' : 's'} still to fill in`);
  const text = parts.length ? parts.join(', ') : `No problems: ${targetName(state)} is ready.`;
  if (summary.textContent !== text) summary.textContent = text;
  summary.dataset.errors = String(errors);
  summary.dataset.warnings = String(warnings);
  summary.dataset.pending = String(held);
  summary.className = `summary ${errors ? 'error' : warnings ? 'warning' : held ? 'pending' : 'ok'}`;
}

/** Every finding shows from now on (the user asked for output). */
function reveal() {
  if (revealAll) return;
  revealAll = true;
  renderDiagnostics();
}

/** The collapsed Advanced section's summary says how many fields are set and what is
 * wrong inside, so nothing it holds goes unnoticed. */
function renderAdvancedState(diagnostics) {
  const rows = state.retire.deployments.filter((d) => d.name.trim() || d.uri.trim()).length;
  const set = ADVANCED_FIELDS.filter((f) => (state.advanced[advancedId(f)] ?? '').trim()).length
    + rows + (typeof state.retire.listed === 'boolean' ? 1 : 0);
  const inside = diagnostics.filter((d) => /^\/(rewrap|rotate|retire)(\/|$)|^#retire\//.test(d.path));
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
  const key = diagnostics.map((d) => `${d.code}|${d.path}|${d.message}|${where.get(d)}`).join('\n');
  if (renderFindings.key === key) return;
  renderFindings.key = key;
  const items = diagnostics.map((d) => {
    const listId = where.get(d);
    const button = el('button', { type: 'button', class: `link ${d.severity}`, 'data-code': d.code },
      `${d.severity === 'error' ? 'Error' : 'Warning'} ${d.code}: ${d.message}`);
    button.addEventListener('click', () => {
      const list = listId && $(listId);
      const target = list?.closest('.field')?.querySelector('input, textarea, select')
        ?? list?.closest('section, .panel, fieldset, details.advanced')?.querySelector('input, textarea, select');
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

/** The label of the field at a JSON pointer, with the provider or deployment it
 * belongs to: `Secret access key (aws:legacy)`. */
function fieldLabel(path) {
  const id = pathInputs.get(path);
  const label = id && document.querySelector(`label[for="${id}"]`)?.textContent.replace(/ \(optional\)$/, '');
  const [a, b] = unpointer(path);
  const owner = a === 'kmsProviders' || a === 'tlsOptions' ? ` (${b})` : a === 'retire' ? ` (deployment ${unpointer(path)[2]})` : '';
  return `${label ?? path}${owner}`;
}

/** What keyshift.toml's help line and notice say: where the file goes, and, when the
 * form holds secrets, what the file says instead and what to export. */
function renderSecretNotice() {
  const { moved, withheld } = handed;
  const help = $('toml-help');
  const notice = $('toml-secrets');
  const list = $('toml-secrets-list');
  if (withheld.length) {
    const w = withheld[0];
    help.textContent = `Not handed out: ${fieldLabel(w.path)} holds what looks like a secret (${w.why}). keyshift.toml never holds secrets: clear that field, and rotate the secret if it was pasted anywhere it could be recorded.`;
    help.className = 'help refused';
  } else if (moved.length) {
    help.textContent = 'Put it next to the server that runs keyshift, and export the variables below there before you run it: the file refers to them instead of the secrets you typed.';
    help.className = 'help';
  } else {
    help.textContent = 'Put it next to the server that runs keyshift. It holds references to your secrets (env:NAME, file:PATH), never the secrets themselves.';
    help.className = 'help';
  }
  notice.hidden = moved.length === 0;
  list.replaceChildren(...moved.map((m) => el('li', { 'data-variable': m.variable, 'data-path': m.path },
    el('code', { text: `export ${m.variable}=…` }), ` the value you typed into ${fieldLabel(m.path)}; the file says `,
    el('code', { text: `env:${m.variable}` }), '.')));
}

/** Writes the suggested references into the form in place of the literal secrets. */
function useReferences() {
  let n = 0;
  for (const m of handed.moved) {
    const input = $(pathInputs.get(m.path) ?? '');
    if (!input) continue;
    input.value = `env:${m.variable}`;
    input.dispatchEvent(new Event('input'));
    n += 1;
  }
  status(`Wrote ${n} reference${n === 1 ? '' : 's'} into the form.`);
}

function renderOutputs() {
  handed = secretFree(last.config ?? toConfig(state), last.diagnostics);
  const config = handed.config;
  renderSecretNotice();
  if (handed.withheld.length) {
    $('toml').textContent = `# keyshift.toml is held back: ${fieldLabel(handed.withheld[0].path)} holds what looks like a secret.\n# Clear that field; the file then appears here.`;
  } else {
    try {
      $('toml').textContent = ks.toToml(config);
    } catch (e) {
      $('toml').textContent = `# ${e.message}`;
    }
  }
  $('out-toml').dataset.state = handed.withheld.length ? 'withheld' : handed.moved.length ? 'moved' : 'ok';
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
  const sources = pol?.sources ?? [];
  $('policy-sources-h').hidden = sources.length === 0;
  $('policy-sources').replaceChildren(...sources.map(sourceAccess));
  for (const t of TABS) {
    const items = pol && pol.provider === t ? pol.createKey.map(commandItem) : [];
    $(`create-${t}-list`).replaceChildren(...items);
    $(`create-${t}`).hidden = items.length === 0;
  }
  const plan = ks.plan(config, state.lang);
  $('plan-summary').textContent = plan.summary;
  // While the only findings are fields not reached yet, core's "the file has errors"
  // is what is still to fill in: said, but not in red.
  const pending = $('summary').className === 'summary pending';
  $('plan-risks').replaceChildren(...plan.risks.map((r) =>
    el('li', { class: pending && r.id === 'invalid-config' ? `${r.level} pending` : r.level, 'data-risk': r.id },
      el('strong', { text: `${r.level}: ` }), r.message)));
  const scanned = plan.mode === 'rotate' ? config.rotate?.collections : undefined;
  const steps = (list) => list.map((s) => el('li', { 'data-step': s.id },
    el('h4', { text: s.title }), el('p', { text: s.why }),
    ...(s.commands.length ? [el('pre', { tabindex: '0' }, el('code', { text: s.commands.join('\n') }))] : []),
    ...(scanned?.length && ROTATE_SCOPED.includes(s.id) ? [scopeNote(scanned)] : [])));
  $('plan-steps').replaceChildren(...steps(plan.steps));
  $('plan-rollback').replaceChildren(...steps(plan.rollback));
  document.body.dataset.ready = 'true';
}

/** What the move needs on one KMS source key, as core's policy says it. */
function sourceAccess(s) {
  const box = el('section', { class: 'source-access', 'data-source': s.name });
  box.append(el('h4', { text: s.title }));
  if (s.document) box.append(el('pre', { tabindex: '0' }, el('code', { text: s.document })));
  if (s.grant?.length) box.append(el('ol', { class: 'commands' }, ...s.grant.map(commandItem)));
  if (s.revoke?.length) {
    box.append(el('p', { text: 'After the move and the waiting period:' }),
      el('ol', { class: 'commands revoke' }, ...s.revoke.map(commandItem)));
  }
  if (s.notes?.length) box.append(el('ul', { class: 'notes' }, ...s.notes.map((n) => el('li', { text: n }))));
  return box;
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

/** Copy or download keyshift.toml: every finding shows from now on; a file holding
 * something that looks like a secret is refused, with the reason. */
function handOut(how) {
  reveal();
  renderOutputs();
  if (handed.withheld.length) {
    const w = handed.withheld[0];
    status(`Not ${how === 'copy' ? 'copied' : 'downloaded'}: ${fieldLabel(w.path)} holds what looks like a secret (${w.why}).`);
    return;
  }
  const text = $('toml').textContent;
  const note = handed.moved.length ? ` with env: references in place of the secrets you typed (export ${handed.moved.map((m) => m.variable).join(', ')})` : '';
  if (how === 'copy') copy(text, 'keyshift.toml', note);
  else download(text, note);
}

async function copy(text, what, note = '') {
  reveal();
  try {
    await navigator.clipboard.writeText(text);
    status(`Copied ${what}${note}.`);
  } catch {
    status(`Could not copy ${what}: select the text and press Ctrl+C.`);
  }
}

function download(text, note) {
  const blob = new Blob([text], { type: 'application/toml' });
  const url = URL.createObjectURL(blob);
  const a = el('a', { href: url, download: 'keyshift.toml' });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
  status(`Downloaded keyshift.toml${note}.`);
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
  console.error(e);
});
