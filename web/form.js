// The training form, built from /api/schema so every parameter of the trainer appears, in its
// group: collapsible sections, and the dataset kinds (raw text, JSON + format, JSONL, hybrid)
// as tabs. Reads the form into the API's JSON, fills it from a past run's parameters, and
// shows a server error next to the field it names.
'use strict';

const DATA_TABS = ['raw_text', 'json', 'jsonl', 'hybrid'];
const COLLAPSED_GROUPS = new Set(['advanced']);
const PATH_LISTS = {
  model: 'dl-models', raw_text_file: 'dl-text', dataset: 'dl-json', eval_dataset: 'dl-json', format: 'dl-json',
  jsonl_dataset: 'dl-jsonl', jsonl_eval_dataset: 'dl-jsonl', copy_params_from: 'dl-runs',
};
const PLACEHOLDERS = {
  output_dir: '(the --loras folder)', resume_from_checkpoint: "checkpoint folder, or 'latest'",
  target_modules: 'e.g. q_proj, v_proj', chat_template_kwargs: 'e.g. {"enable_thinking": false}',
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

class TrainForm {
  constructor(root, schema) {
    this.root = root;
    this.fields = schema.fields;
    this.inputs = {};
    const byGroup = {};
    for (const f of this.fields) (byGroup[f.group] = byGroup[f.group] || []).push(f);
    let tabsAdded = false;
    for (const g of schema.groups) {
      if (!byGroup[g.id]) continue;
      if (DATA_TABS.includes(g.id)) {
        if (!tabsAdded) root.append(this.dataTabs(schema.groups.filter(x => DATA_TABS.includes(x.id)), byGroup));
        tabsAdded = true;
        continue;
      }
      const box = el('details', { class: 'group', id: `g-${g.id}`, open: !COLLAPSED_GROUPS.has(g.id) },
                     [el('summary', { text: g.title }), this.grid(byGroup[g.id])]);
      root.append(box);
    }
  }

  dataTabs(groups, byGroup) {
    const bar = el('div', { class: 'subtabs' }), set = el('fieldset', { id: 'g-sources' }, [el('legend', { text: 'Dataset source' }), bar]);
    for (const [i, g] of groups.entries()) {
      const btn = el('button', { type: 'button', id: `tab-${g.id}`, class: i ? '' : 'active', text: g.title });
      const panel = el('div', { class: i ? 'subpanel' : 'subpanel active', id: `g-${g.id}` }, [this.grid(byGroup[g.id] || [])]);
      btn.addEventListener('click', () => this.showTab(g.id));
      bar.append(btn);
      set.append(panel);
    }
    return set;
  }

  showTab(id) {
    for (const b of this.root.querySelectorAll('.subtabs button')) b.classList.toggle('active', b.id === `tab-${id}`);
    for (const p of this.root.querySelectorAll('.subpanel')) p.classList.toggle('active', p.id === `g-${id}`);
  }

  grid(fields) {
    const g = el('div', { class: 'grid' });
    for (const f of fields) g.append(this.fieldBox(f));
    return g;
  }

  fieldBox(f) {
    const id = `f-${f.name}`;
    let input;
    if (f.type === 'bool') {
      input = el('input', { type: 'checkbox', id, name: f.name });
    } else if (f.type === 'choice') {
      input = el('select', { id, name: f.name }, f.choices.map(c => el('option', { value: c, text: c })));
    } else {
      const numeric = f.type === 'int' || f.type === 'float';
      input = el('input', { type: 'text', id, name: f.name, list: PATH_LISTS[f.name],
                            inputmode: numeric ? 'decimal' : undefined, placeholder: PLACEHOLDERS[f.name] });
    }
    this.inputs[f.name] = input;
    this.set(f, f.name === 'output_dir' ? '' : f.default);
    const label = f.type === 'bool' ? el('label', { for: id }, [input, ` ${f.name}`]) : el('label', { for: id, text: f.name });
    const parts = f.type === 'bool' ? [label] : [label, input];
    return el('div', { class: 'field', 'data-field': f.name, title: f.cli },
              [...parts, el('small', { text: f.help }), el('div', { class: 'field-error', id: `err-${f.name}` })]);
  }

  set(f, v) {
    const input = this.inputs[f.name];
    if (f.type === 'bool') input.checked = v === true || v === 'true';
    else if (f.type === 'object') input.value = v && typeof v === 'object' ? (Object.keys(v).length ? JSON.stringify(v) : '') : (v ?? '');
    else if (Array.isArray(v)) input.value = v.join(', ');
    else input.value = v === null || v === undefined ? '' : String(v);
  }

  // The request body: typed where the text parses, raw otherwise so the server names the problem.
  values() {
    const out = {};
    for (const f of this.fields) {
      const input = this.inputs[f.name];
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
  // (withName) when a page opens while it runs. The dataset tab follows the filled-in form.
  fill(params, withName = false) {
    for (const f of this.fields)
      if (f.name in params && (withName || f.name !== 'lora_name') && f.name !== 'output_dir') this.set(f, params[f.name]);
    const v = this.values();
    const kind = v.hybrid_training ? 'hybrid' : v.jsonl_dataset ? 'jsonl' : v.dataset ? 'json' : 'raw_text';
    this.showTab(kind);
  }

  clearErrors() {
    for (const e of this.root.querySelectorAll('.field-error')) e.textContent = '';
    for (const e of this.root.querySelectorAll('.field.invalid')) e.classList.remove('invalid');
  }

  // Shows message next to field; false when the form has no such field.
  showError(field, message) {
    const box = this.root.querySelector(`.field[data-field="${CSS.escape(field)}"]`);
    if (!box) return false;
    box.classList.add('invalid');
    box.querySelector('.field-error').textContent = message;
    const details = box.closest('details');
    if (details) details.open = true;
    const panel = box.closest('.subpanel');
    if (panel) this.showTab(panel.id.slice(2));
    box.scrollIntoView({ block: 'center' });
    this.inputs[field].focus();
    return true;
  }
}
