// The Perplexity tab, as text-generation-webui's Training tab evaluates: one or more models
// times one or more adapters (or the base model alone) on any text file of the data folder,
// queued as one job that runs them one after another with a line and progress per item;
// combinations evaluated before on the same text and settings are skipped (and listed)
// unless "redo" is ticked. The results table sorts by any column (newest first by default),
// and each comment is edited in place and saved back to evaluations.csv.
'use strict';

const evalUi = { rows: [], sort: { key: 'date', dir: 'descending' }, doneSeen: -1 };
const EVAL_COLUMNS = [
  ['model', 'Model'], ['lora', 'LoRA'], ['dataset', 'Dataset'], ['perplexity', 'Perplexity'], ['stride', 'stride'],
  ['max_length', 'max_length'], ['tokens', 'Tokens'], ['date', 'Date'], ['comment', 'Comment'],
];
const MAX_COMMENT = 2000;

// Keeps what was selected in a multiple select when its options are refilled.
function fillMulti(id, values, first, firstText) {
  const s = $(id), keep = new Set([...s.selectedOptions].map(o => o.value));
  const opts = (first !== undefined ? [[first, firstText]] : []).concat(values.map(v => [v, v]));
  s.replaceChildren(...opts.map(([v, t]) => el('option', { value: v, text: t })));
  for (const o of s.options) o.selected = keep.has(o.value);
}

function fillEvaluatePickers(models, data, runs) {
  fillMulti('ppl-model', models.map(m => m.name));
  const first = !$('ppl-lora').options.length;
  fillMulti('ppl-lora', runs.filter(r => r.has_adapter).map(r => r.name), '', '(base model alone)');
  if (first) $('ppl-lora').options[0].selected = true;
  // Any text file of the data folder is an evaluation text.
  fillList('dl-ppl-text', data.filter(d => d.kind !== 'folder').map(d => d.path));
}

function evaluateStatus(j) {
  const p = j.progress || {}, q = j.queue || [];
  if (j.state === 'failed') return `perplexity failed: ${j.error}`;
  const count = s => q.filter(x => x.state === s).length;
  const tally = `${count('done')} evaluated, ${(j.skipped || []).length} skipped` +
    (count('failed') ? `, ${count('failed')} failed` : '');
  if (j.state === 'finished') return q.length > 1 || (j.skipped || []).length ? `perplexity: ${tally}`
    : `perplexity ${fmt(j.result && j.result.perplexity)}`;
  if (j.state === 'stopped') return `perplexity stopped: ${tally}`;
  const item = q.length > 1 ? `item ${(p.item || 0) + 1}/${q.length}, ` : '';
  return `perplexity ${j.state}: ${item}window ${p.done || 0}/${p.total || '?'}`;
}

function itemName(x) { return `${x.model}${x.lora ? ' + ' + x.lora : ' (base)'}`; }

// The queue's lines: each item with its state, perplexity or error; the skipped ones after.
function renderQueue(j) {
  if (j.kind !== 'perplexity' || !j.queue) return;
  const p = j.progress || {};
  $('ppl-queue').replaceChildren(...j.queue.map((x, i) => {
    let text = `${itemName(x)}: ${x.state}`;
    if (x.state === 'running' && p.item === i && p.total) text += ` (window ${p.done}/${p.total})`;
    if (x.state === 'done') text += ` · perplexity ${fmt(x.perplexity, 3)}`;
    if (x.error) text += ` · ${x.error}`;
    return el('li', { 'data-state': x.state, text });
  }));
  renderSkipped(j.skipped || []);
  const done = j.queue.filter(x => x.state === 'done').length;
  if (done !== evalUi.doneSeen) {  // a new row in evaluations.csv
    evalUi.doneSeen = done;
    if (done) refreshEvaluations();
  }
}

function renderSkipped(skipped) {
  $('ppl-skipped').replaceChildren(...skipped.map(x => el('li', {
    text: `${itemName(x)}: skipped, evaluated ${x.date} (perplexity ${fmt(x.perplexity, 3)})` })));
  $('ppl-skipped-box').hidden = !skipped.length;
}

function selected(id) { return [...$(id).selectedOptions].map(o => o.value); }

async function startEvaluation() {
  $('ppl-summary').textContent = '';
  const body = {
    models: selected('ppl-model'), loras: selected('ppl-lora'), text_file: $('ppl-text').value,
    stride: numberOrText($('ppl-stride').value), max_length: numberOrText($('ppl-max-length').value),
    comment: $('ppl-comment').value, redo: $('ppl-redo').checked,
  };
  let j;
  try {
    j = await api('POST', '/api/perplexity/queue', body);
  } catch (e) {
    if (e.field === 'models') e.field = 'model';  // the list's error goes next to its picker
    if (e.field === 'loras') e.field = 'lora';
    throw e;
  }
  if (!j.started) {
    $('ppl-queue').replaceChildren();
    renderSkipped(j.skipped);
    $('ppl-summary').textContent = `Nothing to evaluate: ${j.skipped.length === 1 ? 'this combination is' :
      `all ${j.skipped.length} combinations are`} in evaluations.csv already (tick "redo" to evaluate again).`;
    return;
  }
  evalUi.doneSeen = -1;
  if (j.id > ui.job.id) applyState(j);  // running now, before its event comes
}

// ---- results ----

async function refreshEvaluations() {
  const ev = await api('GET', '/api/evaluations');
  evalUi.rows = ev.rows;
  renderEvaluations();
}

function compareRows(a, b, key) {
  const x = a[key], y = b[key];
  const c = typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y));
  return c || a.row - b.row;  // equal values: file order (later rows are newer)
}

function renderEvaluations() {
  const { key, dir } = evalUi.sort, sign = dir === 'ascending' ? 1 : -1;
  const rows = evalUi.rows.slice().sort((a, b) => sign * compareRows(a, b, key));
  const head = $('ppl-table').querySelector('thead tr');
  head.replaceChildren(...EVAL_COLUMNS.map(([k, title]) => {
    if (k === 'comment') return el('th', { scope: 'col', text: title });
    const b = el('button', { type: 'button', class: 'sort', 'data-sort': k, text: title });
    b.addEventListener('click', () => {
      evalUi.sort = { key: k, dir: evalUi.sort.key === k && evalUi.sort.dir === 'descending' ? 'ascending' : 'descending' };
      renderEvaluations();
      head.querySelector(`button[data-sort="${k}"]`).focus();
    });
    return el('th', { scope: 'col', 'aria-sort': k === key ? dir : 'none' }, [b]);
  }));
  $('ppl-table').querySelector('tbody').replaceChildren(...rows.map(r => el('tr', { 'data-row': r.row }, [
    r.model, r.lora, r.dataset, fmt(r.perplexity, 3), r.stride, r.max_length, r.tokens, r.date,
  ].map(v => el('td', { text: String(v) })).concat([commentCell(r)]))));
}

// The comment: a text box saved when it changes (leaving it, or Ctrl+Enter), with its state.
function commentCell(r) {
  const lines = Math.min(4, String(r.comment).split('\n').length);
  const box = el('textarea', { rows: lines, maxlength: MAX_COMMENT, class: 'comment',
                               'aria-label': `comment on ${r.model}${r.lora ? ' + ' + r.lora : ''}, ${r.dataset}, ${r.date}` });
  box.textContent = r.comment;
  const state = el('span', { class: 'comment-state', role: 'status' });
  const save = async () => {
    if (box.value === r.comment) return;
    state.textContent = 'saving…';
    try {
      const saved = await api('POST', '/api/evaluations/comment', { row: r.row, model: r.model, lora: r.lora,
                                                                  dataset: r.dataset, date: r.date, comment: box.value });
      r.comment = saved.comment;
      state.textContent = 'saved';
      state.dataset.state = 'saved';
    } catch (e) {
      state.textContent = e.message;
      state.dataset.state = 'error';
    }
  };
  box.addEventListener('change', save);
  box.addEventListener('keydown', e => { if (e.key === 'Enter' && e.ctrlKey) { e.preventDefault(); save(); } });
  return el('td', {}, [box, state]);
}

function wireEvaluate() {
  $('ppl-run').addEventListener('click', () => guarded('ppl', startEvaluation));
  $('ppl-stop').addEventListener('click', () => guarded('ppl', () => api('POST', '/api/stop')));
}
