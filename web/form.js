// The training form, built from /api/schema: each field with its plain label, its identifier
// (the YAML key; the flag in its tooltip) in small type and its help tied to the input; a slider
// where the schema gives one; a refresh button by the pickers of models, data, formats and
// adapters. The essential fields come first, with the dataset source as a mode switch (raw text,
// JSON + format, JSONL chat, hybrid); the rest sit under Advanced. Reads the form into the API's
// JSON (only the chosen mode's dataset fields), fills it from a past run's parameters, and shows
// a server error next to the field it names. The words themselves live in the schema
// (src/train/params_words.cpp), so `tpro train --help` uses the same ones.
'use strict';

// Panels in page order: hybrid first, as in hybrid mode its choice of dataset comes first.
const SOURCE_GROUPS = ['hybrid', 'raw_text', 'json', 'jsonl'];
const DATA_MODES = [
  { id: 'raw_text', title: 'Raw text', note: 'A plain-text file, or a folder of .txt files, cut into blocks of text.' },
  { id: 'json', title: 'JSON + format', note: 'A JSON list of records; a format file turns each record into a prompt.' },
  { id: 'jsonl', title: 'JSONL chat', note: "One conversation per line, laid out by the model's chat template." },
  { id: 'hybrid', title: 'Hybrid', note: 'A text file and a JSON or JSONL dataset together, each at its percentage.' },
];
const HYBRID_PARTS = [{ id: 'json', title: 'JSON + format' }, { id: 'jsonl', title: 'JSONL chat' }];
const PATH_LISTS = {
  model: 'dl-models', raw_text_file: 'dl-text', dataset: 'dl-json', eval_dataset: 'dl-json', format: 'dl-formats',
  jsonl_dataset: 'dl-jsonl', jsonl_eval_dataset: 'dl-jsonl', copy_params_from: 'dl-runs', chat_template_file: 'dl-templates',
  resume_from_checkpoint: 'dl-resume',
};
// The lists a refresh button reloads (the others are fixed), by what its label calls them.
const REFRESHED = { 'dl-models': 'models', 'dl-text': 'text files', 'dl-json': 'JSON datasets', 'dl-formats': 'format files',
                    'dl-jsonl': 'JSONL datasets', 'dl-runs': 'adapters' };
const FIXED_LISTS = { 'dl-templates': ['chatml', 'alpaca', 'llama-2', 'vicuna'], 'dl-resume': ['latest'] };
const PLACEHOLDERS = {
  output_dir: '(the --loras folder)', resume_from_checkpoint: "checkpoint folder, or 'latest'",
  target_modules: 'e.g. q_proj, v_proj', chat_template_file: "(the tokenizer's)",
  chat_template_kwargs: 'e.g. {"enable_thinking": false}',
};

function el(tag, attrs = {}, children = []) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) e.append(c);
  return e;
}

// A slider's value as text: as many decimals as its step has, no trailing zeros.
function stepText(value, step) {
  const decimals = (String(step).split('.')[1] || '').length;
  return String(Number(Number(value).toFixed(decimals)));
}

class TrainForm {
  // opts.onRefresh: reloads the pickers' lists (a promise).
  constructor(root, schema, opts = {}) {
    this.root = root;
    this.fields = schema.fields;
    this.inputs = {};
    this.sliders = {};
    this.onRefresh = opts.onRefresh || (() => Promise.resolve());
    this.mode = 'raw_text';
    this.hybridPart = 'json';
    const byGroup = {};
    for (const f of this.fields) (byGroup[f.group] = byGroup[f.group] || []).push(f);
    this.status = el('span', { class: 'sr-only', role: 'status', id: 'refresh-status' });
    root.append(this.status, ...Object.keys(FIXED_LISTS).concat('dl-formats').map(id =>
      el('datalist', { id }, (FIXED_LISTS[id] || []).map(v => el('option', { value: v })))));
    const groups = schema.groups.filter(g => byGroup[g.id] && !SOURCE_GROUPS.includes(g.id));
    // The essentials: what to train (model, name), on what (the dataset), then how.
    for (const [i, g] of groups.entries()) {
      if (g.id !== 'dataset') {
        const ess = byGroup[g.id].filter(f => f.essential);
        if (ess.length) root.append(el('fieldset', { class: 'group', id: `g-${g.id}` }, [el('legend', { text: g.title }), this.grid(ess)]));
      }
      if (i === 0) root.append(this.dataSection(schema.groups, byGroup));
    }
    const rest = groups.map(g => [g, byGroup[g.id].filter(f => !f.essential)]).filter(([, fs]) => fs.length);
    const count = rest.reduce((n, [, fs]) => n + fs.length, 0);
    root.append(el('details', { class: 'group advanced', id: 'advanced' }, [
      el('summary', { text: `Advanced: ${count} more settings` }),
      ...rest.map(([g, fs]) => el('fieldset', { class: 'subgroup', id: `g-${g.id}-more` }, [el('legend', { text: g.title }), this.grid(fs)])),
    ]));
    const copyFrom = document.getElementById('copy-from');
    if (copyFrom) copyFrom.after(this.refreshButton('past runs', 'copy-refresh'));
    this.markChecked('hybrid-part', this.hybridPart);
    this.setMode('raw_text', false);
  }

  // The dataset: its source as a mode switch over one panel per kind, then the fields that
  // every kind shares (the essential ones; the others are under Advanced).
  dataSection(groups, byGroup) {
    const title = id => (groups.find(g => g.id === id) || { title: id }).title;
    const legend = el('legend', { id: 'data-mode-label', text: 'Dataset source' });
    this.modeNote = el('p', { class: 'note', id: 'data-mode-note' });
    const modes = this.radioGroup('data-mode', DATA_MODES, id => `tab-${id}`, id => this.setMode(id), 'data-mode-label');
    modes.setAttribute('aria-describedby', 'data-mode-note');
    this.panels = {};
    for (const g of SOURCE_GROUPS) {
      const parts = [this.grid(byGroup[g] || [])];
      if (g === 'hybrid') {
        const label = el('span', { id: 'hybrid-part-label', class: 'mini-label', text: 'Instruction data to mix in' });
        parts.unshift(el('div', { class: 'hybrid-part' }, [label,
          this.radioGroup('hybrid-part', HYBRID_PARTS, id => `hybrid-part-${id}`, id => this.setHybridPart(id),
                          'hybrid-part-label', 'subtabs-mini')]));
      }
      this.panels[g] = el('div', { class: 'subpanel', id: `g-${g}`, role: 'group', 'aria-label': title(g) }, parts);
    }
    const shared = (byGroup.dataset || []).filter(f => f.essential);
    return el('fieldset', { class: 'group', id: 'g-sources' },
              [legend, modes, this.modeNote, ...SOURCE_GROUPS.map(g => this.panels[g]), this.grid(shared)]);
  }

  // A radio group of buttons (WAI-ARIA radio pattern): one tab stop, arrows move the choice.
  radioGroup(name, options, idOf, onPick, labelledBy, cls = 'subtabs') {
    const group = el('div', { class: cls, role: 'radiogroup', id: name, 'aria-labelledby': labelledBy });
    const buttons = options.map(o => {
      const b = el('button', { type: 'button', role: 'radio', id: idOf(o.id), 'data-value': o.id, text: o.title });
      b.addEventListener('click', () => onPick(o.id));
      return b;
    });
    group.addEventListener('keydown', e => {
      const keys = { ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: 'first', End: 'last' };
      if (!(e.key in keys)) return;
      e.preventDefault();
      const at = buttons.indexOf(document.activeElement), k = keys[e.key];
      const next = k === 'first' ? 0 : k === 'last' ? buttons.length - 1 : (Math.max(at, 0) + k + buttons.length) % buttons.length;
      buttons[next].click();
      buttons[next].focus();
    });
    group.append(...buttons);
    return group;
  }

  markChecked(groupId, value) {
    for (const b of this.root.querySelectorAll(`#${groupId} [role=radio]`)) {
      const on = b.dataset.value === value;
      b.setAttribute('aria-checked', String(on));
      b.tabIndex = on ? 0 : -1;
      b.classList.toggle('active', on);
    }
  }

  // The dataset source. announce: tell the page (the memory estimate) that the data changed.
  setMode(id, announce = true) {
    this.mode = id;
    this.markChecked('data-mode', id);
    this.modeNote.textContent = DATA_MODES.find(m => m.id === id).note;
    const shown = this.sourceGroups();
    for (const g of SOURCE_GROUPS) {
      this.panels[g].hidden = !shown.has(g);
      this.panels[g].classList.toggle('active', shown.has(g));
    }
    const hybrid = this.inputs.hybrid_training;
    if (hybrid) {
      hybrid.checked = id === 'hybrid';
      if (announce) hybrid.dispatchEvent(new Event('change', { bubbles: true }));
    }
  }

  setHybridPart(id, announce = true) {
    this.hybridPart = id;
    this.markChecked('hybrid-part', id);
    if (this.mode === 'hybrid') this.setMode('hybrid', announce);
  }

  // The source groups the chosen mode trains on.
  sourceGroups() {
    return new Set(this.mode === 'hybrid' ? ['hybrid', 'raw_text', this.hybridPart] : [this.mode]);
  }

  grid(fields) {
    const g = el('div', { class: 'grid' });
    for (const f of fields) g.append(this.fieldBox(f));
    return g;
  }

  refreshButton(what, id) {
    const b = el('button', { type: 'button', class: 'refresh', id, 'aria-label': `Refresh the list of ${what}`,
                             title: `Refresh the list of ${what}`, text: '↻' });
    b.addEventListener('click', async () => {
      b.setAttribute('aria-busy', 'true');
      this.status.textContent = '';
      try {
        await this.onRefresh();
        this.status.textContent = `The list of ${what} is up to date.`;
      } catch (e) {
        this.status.textContent = `Could not refresh the list of ${what}: ${e.message}`;
      } finally {
        b.removeAttribute('aria-busy');
      }
    });
    return b;
  }

  fieldBox(f) {
    const id = `f-${f.name}`, helpId = `help-${f.name}`, labelId = `label-${f.name}`;
    const describedBy = `${helpId} err-${f.name}`;
    let input;
    if (f.type === 'bool') {
      input = el('input', { type: 'checkbox', id, name: f.name, 'aria-describedby': describedBy });
    } else if (f.type === 'choice') {
      input = el('select', { id, name: f.name, 'aria-describedby': describedBy },
                 f.choices.map(c => el('option', { value: c, text: c })));
    } else {
      const numeric = f.type === 'int' || f.type === 'float';
      input = el('input', { type: 'text', id, name: f.name, list: PATH_LISTS[f.name], 'aria-describedby': describedBy,
                            inputmode: numeric ? 'decimal' : undefined, placeholder: PLACEHOLDERS[f.name] });
    }
    this.inputs[f.name] = input;
    const label = el('label', { for: id, id: labelId, text: f.label || f.name, title: f.help });
    const ident = el('code', { class: 'ident', text: f.name, title: `YAML key and API field ${f.name}; flag ${f.cli}` });
    let control = input;
    if (f.slider) control = this.sliderRow(f, input, labelId, helpId);
    else if (REFRESHED[PATH_LISTS[f.name]]) control = el('div', { class: 'picker-row' }, [input, this.refreshButton(REFRESHED[PATH_LISTS[f.name]])]);
    const head = f.type === 'bool' ? el('div', { class: 'field-head check' }, [input, label, ident])
                                   : el('div', { class: 'field-head' }, [label, ident]);
    const box = el('div', { class: 'field', 'data-field': f.name },
                   [head, ...(f.type === 'bool' ? [] : [control]), el('small', { id: helpId, text: f.help }),
                    el('div', { class: 'field-error', id: `err-${f.name}` })]);
    // The mode switch sets hybrid_training: its box only carries the field's errors.
    if (f.name === 'hybrid_training') {
      head.hidden = true;
      box.querySelector('small').hidden = true;
    }
    this.set(f, f.name === 'output_dir' ? '' : f.default);
    return box;
  }

  // A range input and the text box (the field's value) side by side, each following the other.
  sliderRow(f, input, labelId, helpId) {
    const s = f.slider;
    const range = el('input', { type: 'range', id: `s-${f.name}`, min: s.min, max: s.max, step: s.step,
                                'aria-labelledby': labelId, 'aria-describedby': helpId });
    this.sliders[f.name] = range;
    range.addEventListener('input', () => {
      input.value = stepText(range.value, s.step);
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
    range.addEventListener('change', () => input.dispatchEvent(new Event('change', { bubbles: true })));
    input.addEventListener('input', () => this.syncSlider(f.name));
    input.classList.add('slider-value');
    return el('div', { class: 'slider-row' }, [range, input]);
  }

  // The slider shows the text box's number (at its nearest end when outside its range).
  syncSlider(name) {
    const range = this.sliders[name], text = this.inputs[name].value.trim();
    if (range && text !== '' && isFinite(Number(text))) range.value = text;
  }

  set(f, v) {
    const input = this.inputs[f.name];
    if (f.type === 'bool') input.checked = v === true || v === 'true';
    else if (f.type === 'object') input.value = v && typeof v === 'object' ? (Object.keys(v).length ? JSON.stringify(v) : '') : (v ?? '');
    else if (Array.isArray(v)) input.value = v.join(', ');
    else input.value = v === null || v === undefined ? '' : String(v);
    this.syncSlider(f.name);
  }

  // The request body: typed where the text parses, raw otherwise so the server names the problem.
  // Only the chosen dataset mode's source fields are sent as typed; the others get their defaults.
  values() {
    const out = {}, shown = this.sourceGroups();
    for (const f of this.fields) {
      const input = this.inputs[f.name];
      if (f.name === 'hybrid_training') { out[f.name] = this.mode === 'hybrid'; continue; }
      if (SOURCE_GROUPS.includes(f.group) && !shown.has(f.group)) { out[f.name] = f.default; continue; }
      if (f.type === 'bool') { out[f.name] = input.checked; continue; }
      const text = input.value.trim();
      if (f.name === 'output_dir' && !text) continue;
      if (f.type === 'int' && /^[-+]?\d+$/.test(text)) out[f.name] = Number(text);
      else if (f.type === 'float' && text !== '' && isFinite(Number(text))) out[f.name] = Number(text);
      else out[f.name] = f.type === 'string' || f.type === 'choice' || f.type === 'string-list' || f.type === 'object' ? input.value : text;
    }
    return out;
  }

  // A past run's parameters ("copy parameters from": keeps the new run's name and every field
  // the run's file does not set, such as a Training PRO run's model), or the current job's own
  // (withName) when a page opens while it runs. The dataset mode follows the filled-in fields.
  fill(params, withName = false) {
    for (const f of this.fields)
      if (f.name in params && (withName || f.name !== 'lora_name') && f.name !== 'output_dir') this.set(f, params[f.name]);
    const has = name => this.inputs[name].value.trim() !== '';
    this.hybridPart = has('jsonl_dataset') && !has('dataset') ? 'jsonl' : 'json';
    this.markChecked('hybrid-part', this.hybridPart);
    const hybrid = 'hybrid_training' in params ? params.hybrid_training === true || params.hybrid_training === 'true'
                                               : this.mode === 'hybrid';
    this.setMode(hybrid ? 'hybrid' : has('jsonl_dataset') ? 'jsonl' : has('dataset') ? 'json' : 'raw_text');
  }

  clearErrors() {
    for (const e of this.root.querySelectorAll('.field-error')) e.textContent = '';
    for (const e of this.root.querySelectorAll('.field.invalid')) e.classList.remove('invalid');
    for (const e of this.root.querySelectorAll('[aria-invalid]')) e.removeAttribute('aria-invalid');
  }

  // Shows message next to field; false when the form has no such field.
  showError(field, message) {
    const box = this.root.querySelector(`.field[data-field="${CSS.escape(field)}"]`);
    if (!box) return false;
    box.classList.add('invalid');
    box.querySelector('.field-error').textContent = message;
    const input = this.inputs[field];
    input.setAttribute('aria-invalid', 'true');
    const details = box.closest('details');
    if (details) details.open = true;
    const panel = box.closest('.subpanel');
    if (panel && panel.hidden) this.setMode(panel.id.slice(2));
    box.scrollIntoView({ block: 'center' });
    (field === 'hybrid_training' ? this.root.querySelector('#data-mode [aria-checked="true"]') : input).focus();
    return true;
  }
}
