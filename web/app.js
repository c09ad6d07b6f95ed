// The page's behaviour: tabs, pickers filled from the served folders, the training form and
// its buttons, the live state (a snapshot from /api/job, then server-sent events from
// /api/events after its last_event_id; EventSource itself resends Last-Event-ID when it
// reconnects), past runs with their charts, and the perplexity tab.
'use strict';

const $ = id => document.getElementById(id);
const ui = { form: null, chart: null, runChart: null, es: null, job: { id: 0, state: 'idle' }, runName: '', loaded: false };

function active(job) { return job.state === 'running' || job.state === 'stopping'; }

function fmt(v, digits = 4) { return v === null || v === undefined || !isFinite(v) ? '-' : Number(v).toFixed(digits); }

function statusText(j) {
  if (j.state === 'idle') return 'idle: no job has run since the server started';
  if (j.kind === 'perplexity') {
    const p = j.progress || {};
    if (j.state === 'failed') return `perplexity failed: ${j.error}`;
    if (j.state === 'finished') return `perplexity ${fmt(j.result && j.result.perplexity)}`;
    return `perplexity ${j.state}: window ${p.done || 0}/${p.total || '?'}`;
  }
  if (j.state === 'failed') return `failed: ${j.error}`;
  const parts = [`${j.lora_name}: ${j.state}${j.stop_reason ? ` (${j.stop_reason})` : ''}`];
  if (j.step !== undefined) {
    parts.push(`step ${j.step}/${j.total_steps}`, `epoch ${fmt(j.epoch, 2)}`);
    if (active(j)) parts.push(`${fmt(j.it_per_s, 2)} it/s`, `ETA ${formatHms(j.eta_s)}`);
    parts.push(`elapsed ${formatHms(j.elapsed_s)}`, `loss ${fmt(j.loss)}`, `lr ${Number(j.lr || 0).toExponential(2)}`);
  }
  return parts.join(' · ');
}

function render() {
  const j = ui.job, train = j.kind === 'train' && active(j);
  const st = $('status');
  st.textContent = statusText(j);
  st.dataset.state = j.state;
  st.dataset.kind = j.kind || '';
  $('stop').disabled = !(j.kind === 'train' && active(j));
  $('save-now').disabled = !train;
  for (const id of ['ctl-stop-loss', 'ctl-stop-epoch', 'ctl-apply']) $(id).disabled = !train;
  $('ppl-stop').disabled = !(j.kind === 'perplexity' && active(j));
  $('ppl-status').textContent = j.kind === 'perplexity' ? statusText(j) : '';
  if (j.kind === 'perplexity' && j.progress) {
    $('ppl-progress').max = Math.max(1, j.progress.total);
    $('ppl-progress').value = j.progress.done;
  }
}

function log(text) {
  const pre = $('log');
  pre.textContent += text + '\n';
  if (pre.textContent.length > 60000) pre.textContent = pre.textContent.slice(-40000);
  pre.scrollTop = pre.scrollHeight;
}

function setControls(control) {
  if (!control) return;
  $('ctl-stop-loss').value = control.stop_at_loss;
  $('ctl-stop-epoch').value = control.stop_at_epoch;
}

function applySnapshot(s) {
  ui.job = s;
  ui.chart.setRecords(s.kind === 'train' ? s.records : []);
  $('log').textContent = '';
  for (const m of s.messages || []) log(m);
  setControls(s.control);
  render();
}

function applyState(summary) {
  const fresh = summary.id !== ui.job.id;
  const wasActive = active(ui.job);
  ui.job = fresh ? summary : Object.assign(ui.job, summary);
  if (fresh) {
    ui.chart.setRecords([]);
    $('log').textContent = '';
    setControls(summary.control);
  }
  render();
  if (wasActive && !active(ui.job)) {
    refreshLists();
    if (ui.job.kind === 'perplexity') refreshEvaluations();
    if (ui.job.state === 'failed') showError(ui.job.kind === 'perplexity' ? 'ppl' : 'train',
                                            { message: ui.job.error, field: ui.job.error_field });
  }
}

async function connect() {
  if (ui.es) ui.es.close();
  const snap = await api('GET', '/api/job');
  applySnapshot(snap);
  // A page opened while a run is going (or after it) shows that run's parameters.
  if (!ui.loaded && snap.kind === 'train' && snap.params) ui.form.fill(snap.params, true);
  ui.loaded = true;
  const es = new EventSource(`/api/events?after=${snap.last_event_id}`);
  ui.es = es;
  const on = (type, f) => es.addEventListener(type, e => f(JSON.parse(e.data)));
  es.onopen = () => { $('conn').textContent = 'live'; $('conn').classList.add('live'); };
  es.onerror = () => { $('conn').textContent = 'reconnecting…'; $('conn').classList.remove('live'); };
  on('state', applyState);
  on('message', m => log(m.text));
  on('step', r => { ui.chart.add(r); Object.assign(ui.job, r); render(); });
  on('eval', r => { ui.chart.add({ step: r.step, eval_loss: r.eval_loss }); log(r.text); });
  on('checkpoint', c => { ui.job.checkpoints = (ui.job.checkpoints || []).concat([c.path]); });  // logged by its message
  on('control', c => { Object.assign(ui.job, { control: c }); setControls(c); });
  on('progress', p => { ui.job.progress = p; render(); });
  on('resync', () => connect());  // the events we missed are gone: start again from a snapshot
}

// ---- errors next to fields ----

function showError(where, e) {
  const banner = $(where === 'ppl' ? 'ppl-error' : 'form-error');
  let placed = false;
  if (where === 'train' && e.field) placed = ui.form.showError(e.field, e.message);
  if (where === 'ppl' && e.field && $(`ppl-err-${e.field}`)) {
    $(`ppl-err-${e.field}`).textContent = e.message;
    $(`ppl-err-${e.field}`).closest('.field').classList.add('invalid');
    placed = true;
  }
  banner.hidden = placed;
  banner.textContent = placed ? '' : e.message;
}

function clearErrors(where) {
  if (where === 'train') ui.form.clearErrors();
  const scope = where === 'ppl' ? $('ppl-form') : $('train-form');
  for (const e of scope.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of scope.querySelectorAll('.field.invalid')) e.classList.remove('invalid');
  const banner = $(where === 'ppl' ? 'ppl-error' : 'form-error');
  banner.hidden = true;
  banner.textContent = '';
}

async function guarded(where, f) {
  clearErrors(where);
  try { return await f(); } catch (e) { showError(where, e); }
}

// ---- pickers, past runs, evaluations ----

function fillList(id, values) {
  $(id).replaceChildren(...values.map(v => el('option', { value: v })));
}
function fillSelect(id, values, first) {
  const keep = $(id).value;
  $(id).replaceChildren(...(first ? [el('option', { value: '', text: first })] : []),
                        ...values.map(v => el('option', { value: v, text: v })));
  if (values.includes(keep)) $(id).value = keep;
}

async function refreshLists() {
  const [models, data, runs] = await Promise.all([api('GET', '/api/models'), api('GET', '/api/data'), api('GET', '/api/runs')]);
  const names = models.map(m => m.name);
  fillList('dl-models', names);
  fillSelect('ppl-model', names, '');
  fillList('dl-text', data.filter(d => d.kind === 'text' || d.kind === 'folder').map(d => d.path));
  fillList('dl-json', data.filter(d => d.kind === 'json').map(d => d.path));
  fillList('dl-jsonl', data.filter(d => d.kind === 'jsonl').map(d => d.path));
  fillList('dl-runs', runs.map(r => r.name));
  fillSelect('copy-from', runs.filter(r => r.has_adapter).map(r => r.name), '(a past run)');
  fillSelect('ppl-lora', runs.filter(r => r.has_adapter).map(r => r.name), '(none)');
  renderRuns(runs);
}

function renderRuns(runs) {
  const body = $('runs-table').querySelector('tbody');
  body.replaceChildren(...runs.map(r => {
    const tr = el('tr', { class: 'clickable', 'data-run': r.name }, [
      el('td', { text: r.name }), el('td', { text: r.steps ?? '-' }), el('td', { text: fmt(r.epoch, 2) }),
      el('td', { text: fmt(r.loss) }), el('td', { text: r.stop_reason || (r.has_adapter ? '' : 'unfinished') }),
      el('td', { text: String(r.checkpoints.length) }),
      el('td', { text: r.modified ? new Date(r.modified * 1000).toLocaleString() : '' })]);
    tr.addEventListener('click', () => showRun(r.name));
    return tr;
  }));
}

async function showRun(name) {
  ui.runName = name;
  $('run-detail').hidden = false;
  $('run-title').textContent = name;
  try {
    const g = await api('GET', `/api/runs/${encodeURIComponent(name)}/graph`);
    ui.runChart.setRecords(g.records);
  } catch (e) {
    ui.runChart.setRecords([]);
    $('run-title').textContent = `${name}: ${e.message}`;
  }
}

async function copyParams(name) {
  if (!name) return;
  const r = await api('GET', `/api/runs/${encodeURIComponent(name)}/params`);
  ui.form.fill(r.params);
  $('copy-note').textContent = `copied from ${name}` + (r.ignored.length ? `; ignored: ${r.ignored.join(', ')}` : '');
}

async function refreshEvaluations() {
  const ev = await api('GET', '/api/evaluations');
  $('ppl-table').querySelector('tbody').replaceChildren(...ev.rows.slice().reverse().map(r => el('tr', {}, [
    r.model, r.lora, r.dataset, fmt(r.perplexity, 3), r.stride, r.max_length, r.tokens, r.date, r.comment,
  ].map(v => el('td', { text: String(v) })))));
}

// ---- buttons ----

function numberOrText(v) { const t = v.trim(); return t !== '' && isFinite(Number(t)) ? Number(t) : t; }

function wire() {
  for (const b of document.querySelectorAll('nav .tab')) {
    b.addEventListener('click', () => {
      for (const x of document.querySelectorAll('nav .tab')) x.classList.toggle('active', x === b);
      for (const p of document.querySelectorAll('.page')) p.classList.toggle('active', p.id === `tab-${b.dataset.tab}`);
      if (b.dataset.tab !== 'train') refreshLists();
      ui.chart.schedule();
      ui.runChart.schedule();
    });
  }
  $('start').addEventListener('click', () => guarded('train', () => api('POST', '/api/train', ui.form.values())));
  $('stop').addEventListener('click', () => guarded('train', () => api('POST', '/api/stop')));
  $('save-now').addEventListener('click', () => guarded('train', () => api('POST', '/api/save')));
  $('check').addEventListener('click', () => guarded('train', async () => {
    $('check-report').textContent = 'checking…';
    $('check-box').hidden = false;
    try {
      const r = await api('POST', '/api/check', ui.form.values());
      $('check-report').textContent = r.report + (r.sample ? `\n\nsample blocks (untrained text in ⟦ ⟧):\n${r.sample}` : '');
    } catch (e) { $('check-report').textContent = ''; $('check-box').hidden = true; throw e; }
  }));
  $('ctl-apply').addEventListener('click', async () => {
    $('ctl-error').textContent = '';
    const body = {};
    if ($('ctl-stop-loss').value.trim() !== '') body.stop_at_loss = numberOrText($('ctl-stop-loss').value);
    if ($('ctl-stop-epoch').value.trim() !== '') body.stop_at_epoch = numberOrText($('ctl-stop-epoch').value);
    try { await api('POST', '/api/control', body); } catch (e) { $('ctl-error').textContent = e.message; }
  });
  $('copy-apply').addEventListener('click', () => guarded('train', () => copyParams($('copy-from').value)));
  $('run-copy').addEventListener('click', async () => {
    await guarded('train', () => copyParams(ui.runName));
    document.querySelector('nav .tab[data-tab="train"]').click();
  });
  $('ppl-run').addEventListener('click', () => guarded('ppl', () => api('POST', '/api/perplexity', {
    model: $('ppl-model').value, lora: $('ppl-lora').value, text_file: $('ppl-text').value,
    stride: numberOrText($('ppl-stride').value), max_length: numberOrText($('ppl-max-length').value),
    comment: $('ppl-comment').value,
  })));
  $('ppl-stop').addEventListener('click', () => guarded('ppl', () => api('POST', '/api/stop')));
}

async function main() {
  ui.chart = new LossChart($('chart'));
  ui.runChart = new LossChart($('run-chart'));
  const schema = await api('GET', '/api/schema');
  ui.form = new TrainForm($('form-groups'), schema);
  wire();
  await refreshLists();
  await refreshEvaluations();
  await connect();
  document.body.dataset.ready = 'true';
}

main().catch(e => { $('status').textContent = `cannot reach the server: ${e.message}`; });
