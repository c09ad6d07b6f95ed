// The page's behaviour: tabs, pickers filled from the served folders, the training form and
// its buttons, the live state (a snapshot from /api/job, then server-sent events from
// /api/events after its last_event_id; EventSource itself resends Last-Event-ID when it
// reconnects) with a progress bar and the progress in the page title. The Past runs tab is
// runs.js (and export.js), the Perplexity tab evaluate.js, YAML configurations config.js.
'use strict';

const $ = id => document.getElementById(id);
const ui = { form: null, chart: null, runChart: null, compareChart: null, es: null, job: { id: 0, state: 'idle' }, runName: '', loaded: false,
            runs: [], plan: { state: 'none', seq: 0, timer: 0 } };
const PAGE_TITLE = document.title;

function active(job) { return job.state === 'running' || job.state === 'stopping'; }

function fmt(v, digits = 4) { return v === null || v === undefined || !isFinite(v) ? '-' : Number(v).toFixed(digits); }

function statusText(j) {
  if (j.state === 'idle') return 'idle: no job has run since the server started';
  if (j.kind === 'export') return exportStatus(j);
  if (j.kind === 'perplexity') return evaluateStatus(j);
  if (j.state === 'failed') return `failed: ${j.error}`;
  const parts = [`${j.lora_name}: ${j.state}${j.stop_reason ? ` (${j.stop_reason})` : ''}`];
  if (j.step !== undefined) {
    parts.push(`step ${j.step}/${j.total_steps}`, `epoch ${fmt(j.epoch, 2)}`);
    if (active(j)) parts.push(`${fmt(j.it_per_s, 2)} it/s`, `ETA ${formatHms(j.eta_s)}`);
    parts.push(`elapsed ${formatHms(j.elapsed_s)}`, `loss ${fmt(j.loss)}`, `lr ${Number(j.lr || 0).toExponential(2)}`);
  }
  return parts.join(' · ');
}

// Done share of the job, 0..1, or null when it has no measure yet.
function fraction(j) {
  if (j.kind === 'train' && j.step !== undefined && j.total_steps > 0) return Math.min(1, j.step / j.total_steps);
  if ((j.kind === 'perplexity' || j.kind === 'export') && j.progress && j.progress.total > 0)
    return Math.min(1, j.progress.done / j.progress.total);
  return null;
}

// "42%", with a decimal below 10% so a long run shows that it moves.
function percent(f) {
  const p = f * 100;
  return `${p < 10 ? (Math.floor(p * 10) / 10).toFixed(1) : Math.floor(p)}%`;
}

// The training progress bar and the page title ("42% · my-lora · tpro" while a job runs).
function renderProgress(j) {
  const f = fraction(j), bar = $('train-progress');
  const train = j.kind === 'train' && f !== null;
  bar.max = train ? Math.max(1, j.total_steps) : 1;
  bar.value = train ? j.step : 0;
  $('train-eta').textContent = !train ? '' : active(j) ? `${percent(f)} · ETA ${formatHms(j.eta_s)}` : percent(f);
  const what = j.kind === 'train' ? j.lora_name : j.kind;
  if (active(j)) document.title = `${f === null ? '…' : percent(f)} · ${what} · tpro`;
  else if (j.state !== 'idle' && j.kind) document.title = `${j.state} · ${what} · tpro`;
  else document.title = PAGE_TITLE;
}

function render() {
  const j = ui.job, train = j.kind === 'train' && active(j);
  const st = $('status');
  st.textContent = statusText(j);
  st.dataset.state = j.state;
  st.dataset.kind = j.kind || '';
  // One job at a time: neither Start nor Evaluate while any job runs; nor Start when the memory
  // plan says the run would be refused (the plan's box says why and offers to ignore it).
  $('start').disabled = active(j) || ui.plan.state === 'refused';
  $('start').title = ui.plan.state === 'refused' ? $('memory-text').textContent : '';
  $('ppl-run').disabled = active(j);
  $('start-note').hidden = active(j);  // about the next Start; lists are refreshed when the job ends
  $('stop').disabled = !(j.kind === 'train' && active(j));
  $('save-now').disabled = !train;
  for (const id of ['ctl-stop-loss', 'ctl-stop-epoch', 'ctl-apply']) $(id).disabled = !train;
  $('ppl-stop').disabled = !(j.kind === 'perplexity' && active(j));
  $('ppl-status').textContent = j.kind === 'perplexity' ? statusText(j) : '';
  if (j.kind === 'perplexity' && j.progress) {
    $('ppl-progress').max = Math.max(1, j.progress.total);
    $('ppl-progress').value = j.progress.done;
  }
  renderQueue(j);
  renderExport(j);
  renderPlayground(j);
  renderProgress(j);
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

// The step of a checkpoint folder ("…/checkpoint-12-epoch0.50-loss1.2345"), or null.
function checkpointStep(path) {
  const m = /(?:^|\/)checkpoint-(\d+)(?:-|$)/.exec(String(path));
  return m ? Number(m[1]) : null;
}

function applySnapshot(s) {
  ui.job = s;
  const train = s.kind === 'train';
  ui.chart.setRecords(train ? s.records : [], train ? {
    checkpoints: (s.checkpoints || []).map(checkpointStep).filter(n => n !== null), events: s.events || [] } : null);
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
    exportFinished(ui.job);
    schedulePlan(0);
    if (ui.job.state === 'failed' && ui.job.kind !== 'export') showError(ui.job.kind === 'perplexity' ? 'ppl' : 'train',
                                            { message: ui.job.error, field: ui.job.error_field });
  }
}

async function connect() {
  if (ui.es) ui.es.close();
  const snap = await api('GET', '/api/job');
  applySnapshot(snap);
  // A page opened while a run is going (or after it) shows that run's parameters.
  if (!ui.loaded && snap.kind === 'train' && snap.params) ui.form.fill(snap.params, true);
  updateStartNote();
  if (!ui.loaded) schedulePlan(0);
  ui.loaded = true;
  const es = new EventSource(`/api/events?after=${snap.last_event_id}`);
  ui.es = es;
  const on = (type, f) => es.addEventListener(type, e => f(JSON.parse(e.data)));
  es.onopen = () => { $('conn').textContent = 'live'; $('conn').classList.add('online'); };
  es.onerror = () => { $('conn').textContent = 'reconnecting…'; $('conn').classList.remove('online'); };
  on('state', applyState);
  on('message', m => log(m.text));
  on('step', r => { ui.chart.add(r); Object.assign(ui.job, r); render(); });
  on('eval', r => { ui.chart.add({ step: r.step, eval_loss: r.eval_loss }); log(r.text); });
  on('checkpoint', c => {  // logged by its message
    ui.job.checkpoints = (ui.job.checkpoints || []).concat([c.path]);
    const step = checkpointStep(c.path);
    if (step !== null) ui.chart.addCheckpoint(step);
  });
  on('run_event', e => ui.chart.addEvent(e));
  on('control', c => { Object.assign(ui.job, { control: c }); setControls(c); });
  on('progress', p => { ui.job.progress = p; render(); });
  on('resync', () => connect());  // the events we missed are gone: start again from a snapshot
}

// ---- errors next to fields ----

// where: 'train' (the form), 'ppl' (perplexity) or 'ex' (export): the field's box, else the banner.
const FORMS = { train: 'train-form', ppl: 'ppl-form', ex: 'export-form' };
function showError(where, e) {
  const banner = $(where === 'train' ? 'form-error' : `${where}-error`);
  let placed = false;
  if (where === 'train' && e.field) placed = ui.form.showError(e.field, e.message);
  if (where !== 'train' && e.field && $(`${where}-err-${e.field}`)) {
    $(`${where}-err-${e.field}`).textContent = e.message;
    $(`${where}-err-${e.field}`).closest('.field').classList.add('invalid');
    placed = true;
  }
  banner.hidden = placed;
  banner.textContent = placed ? '' : e.message;
}

function clearErrors(where) {
  if (where === 'train') ui.form.clearErrors();
  const scope = $(FORMS[where]);
  for (const e of scope.querySelectorAll('.field-error')) e.textContent = '';
  for (const e of scope.querySelectorAll('.field.invalid')) e.classList.remove('invalid');
  const banner = $(where === 'train' ? 'form-error' : `${where}-error`);
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
  fillSelect('ex-model', names, '');
  fillList('dl-text', data.filter(d => d.kind === 'text' || d.kind === 'folder').map(d => d.path));
  // Format files are the JSON files under formats/ (Training PRO's folder), else every JSON file.
  const json = data.filter(d => d.kind === 'json').map(d => d.path), formats = json.filter(p => p.startsWith('formats/'));
  fillList('dl-json', json.filter(p => !p.startsWith('formats/')));
  fillList('dl-formats', formats.length ? formats : json);
  fillList('dl-jsonl', data.filter(d => d.kind === 'jsonl').map(d => d.path));
  fillList('dl-runs', runs.map(r => r.name));
  fillSelect('copy-from', runs.filter(r => r.has_adapter).map(r => r.name), '(a past run)');
  fillEvaluatePickers(models, data, runs);
  ui.runs = runs;
  playgroundLists(names, runs);
  renderRuns(runs);
  updateStartNote();
}

// ---- what Start will do with lora_name ----

// Start writes into <loras>/<lora_name>: say whether that continues an existing adapter (the
// page may have pre-filled the last run's name) or starts a new one.
function updateStartNote() {
  const note = $('start-note'), v = ui.form.values();
  const name = String(v.lora_name || '').trim();
  note.replaceChildren();
  note.dataset.kind = '';
  if (!name || String(v.output_dir || '').trim()) return;  // another output folder: not listed here
  const run = ui.runs.find(r => r.name === name);
  let kind, text;
  if (!run) [kind, text] = ['new', `Start creates a new adapter '${name}'.`];
  else if (v.always_override) [kind, text] = ['replace', `Start replaces the existing adapter '${name}' (always_override).`];
  else if (String(v.resume_from_checkpoint || '').trim()) [kind, text] = ['resume', `Start resumes '${name}' from a checkpoint.`];
  else if (run.has_adapter) [kind, text] = ['continue', `Start continues the existing adapter '${name}' (its weights, a fresh optimizer).`];
  else [kind, text] = ['unfinished', `'${name}' holds checkpoints of an unfinished run: set resume_from_checkpoint to 'latest', or always_override.`];
  note.dataset.kind = kind;
  note.append(text);
  if (kind !== 'new') {
    const fresh = el('button', { type: 'button', id: 'start-fresh', text: 'Use a new name' });
    fresh.addEventListener('click', () => { $('f-lora_name').value = freshName(name); updateStartNote(); });
    note.append(fresh);
  }
}

// ---- the memory plan next to Start (POST /api/plan, debounced) ----

// Fields that change no part of the plan: editing them does not ask for a new one.
const PLAN_IGNORED = new Set(['lora_name', 'always_override', 'copy_params_from', 'resume_from_checkpoint', 'output_dir',
  'learning_rate', 'lr_scheduler_type', 'epochs', 'max_steps', 'warmup_steps', 'warmup_ratio', 'lora_dropout',
  'lora_alpha', 'report_to', 'save_gguf', 'seed']);
const PLAN_DELAY_MS = 600;

// The server runs one dataset check or plan at a time (429 for a second): this page queues its own.
let slotQueue = Promise.resolve();
function oneAtATime(f) {
  const run = slotQueue.then(f, f);
  slotQueue = run.catch(() => {});
  return run;
}

function planRelevant(name, group) { return name && !PLAN_IGNORED.has(name) && group !== 'checkpoints'; }

function schedulePlan(delay = PLAN_DELAY_MS) {
  clearTimeout(ui.plan.timer);
  ui.plan.seq++;  // an answer to an older request is dropped
  if (ui.plan.state !== 'none') setPlan('pending', $('memory-text').textContent);
  ui.plan.timer = setTimeout(refreshPlan, delay);
}

function setPlan(state, text, canIgnore = false) {
  ui.plan.state = state;
  $('memory-plan').dataset.state = state;
  $('memory-text').textContent = text;
  $('memory-ignore-box').hidden = !canIgnore;
  render();
}

async function refreshPlan() {
  const v = ui.form.values(), seq = ++ui.plan.seq;
  const data = v.raw_text_file || v.dataset || v.jsonl_dataset;
  if (active(ui.job)) {  // the running job holds memory the next run would have: ask when it ends
    setPlan('none', 'Memory: estimated when the running job ends');
    return;
  }
  if (!String(v.model || '').trim() || !String(data || '').trim()) {
    setPlan('none', 'Memory: choose a model and a dataset to see the estimate');
    return;
  }
  let p;
  try {
    p = await oneAtATime(() => api('POST', '/api/plan', v));
  } catch (e) {
    if (seq !== ui.plan.seq) return;
    if (e.status === 429) { schedulePlan(2000); return; }  // a dataset check holds the slot: ask again
    setPlan('error', `Memory: no estimate: ${e.message}`);
    return;
  }
  if (seq !== ui.plan.seq) return;
  renderPlan(p, v);
}

// "Memory: weights 605 MiB + ... = 1.0 GiB of 20.4 GiB available; gradient checkpointing will be switched on"
function renderPlan(p, asked) {
  const extra = [];
  if (p.use_grad_checkpoint && !asked.use_grad_checkpoint) extra.push('gradient checkpointing will be switched on');
  if (asked.pack_weights && !p.pack_weights) extra.push('the weights will not be packed');
  const text = `Memory: ${p.text}${extra.length ? '; ' + extra.join('; ') : ''}`;
  if (p.refusal) {
    setPlan('refused', `${text}. Start is disabled: the run does not fit and would be refused. ${p.refusal}`, true);
  } else if (!p.fits) {
    setPlan('ignored', `${text}; it does not fit: starting anyway (ignore memory check)`, true);
  } else {
    setPlan(extra.length ? 'adjusted' : 'fits', text, !!asked.ignore_memory_check);
  }
  $('memory-plan').title = (p.notes || []).join('\n');
  $('memory-ignore').checked = !!asked.ignore_memory_check;
}

// name-2, name-3, ...: the first that no listed run has.
function freshName(name) {
  const base = name.replace(/-\d+$/, ''), taken = new Set(ui.runs.map(r => r.name));
  for (let i = 2; i < 10000; ++i) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
  return `${base}-${Date.now()}`;
}

async function copyParams(name) {
  if (!name) return;
  const r = await api('GET', `/api/runs/${encodeURIComponent(name)}/params`);
  ui.form.fill(r.params);
  updateStartNote();
  schedulePlan();
  $('copy-note').textContent = `copied from ${name}` + (r.ignored.length ? `; ignored: ${r.ignored.join(', ')}` : '');
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
      ui.compareChart.schedule();
    });
  }
  $('start').addEventListener('click', () => guarded('train', () => api('POST', '/api/train', ui.form.values())));
  const groupOf = Object.fromEntries(ui.form.fields.map(f => [f.name, f.group]));
  for (const type of ['input', 'change'])
    $('form-groups').addEventListener(type, e => { if (planRelevant(e.target.name, groupOf[e.target.name])) schedulePlan(); });
  // The box by Start and the form's own ignore_memory_check field are one setting.
  $('memory-ignore').addEventListener('change', () => {
    $('f-ignore_memory_check').checked = $('memory-ignore').checked;
    schedulePlan(0);
  });
  $('f-ignore_memory_check').addEventListener('change', () => { $('memory-ignore').checked = $('f-ignore_memory_check').checked; });
  for (const name of ['lora_name', 'always_override', 'resume_from_checkpoint', 'output_dir'])
    for (const type of ['input', 'change']) $(`f-${name}`).addEventListener(type, updateStartNote);
  $('stop').addEventListener('click', () => guarded('train', () => api('POST', '/api/stop')));
  $('save-now').addEventListener('click', () => guarded('train', () => api('POST', '/api/save')));
  $('check').addEventListener('click', () => guarded('train', async () => {
    $('check-report').textContent = 'checking…';
    $('check-box').hidden = false;
    try {
      const r = await oneAtATime(() => api('POST', '/api/check', ui.form.values()));
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
  wireConfig();
  wireRuns();
  wireEvaluate();
  wireExport();
  wirePlayground();
}

async function main() {
  ui.chart = new LossChart($('chart'));
  ui.runChart = new LossChart($('run-chart'));
  ui.compareChart = new LossChart($('compare-chart'));
  const schema = await api('GET', '/api/schema');
  ui.form = new TrainForm($('form-groups'), schema, { onRefresh: refreshLists });
  wire();
  await refreshLists();
  await refreshEvaluations();
  await connect();
  document.body.dataset.ready = 'true';
}

main().catch(e => { $('status').textContent = `cannot reach the server: ${e.message}`; });
