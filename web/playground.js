// The Playground tab: chat with (or continue text with) a base model and an adapter from the
// loras folder, the tokens streamed as the server makes them (POST /api/playground/generate
// answers server-sent events, read here from the fetch body), the base and the adapter side by
// side on the same prompt and seed, Stop, and the model the server keeps loaded. The server
// runs one generation at a time and none while a job runs; a job that starts stops it.
'use strict';

const pg = {
  messages: [],      // the chat so far: [{role, content}]
  running: false,
  stopping: false,
  columns: [],       // of the generation shown
  pending: '',       // the user message being answered (chat)
  chunks: 0,         // reads that brought tokens, this generation
  defaultsFor: null, // the adapter whose model and template were last applied
  status: null,
  jobActive: false,  // as last rendered
};

function pgMode() { return $('pg-mode-completion').checked ? 'completion' : 'chat'; }

function pgSetState(state, text) {
  $('pg-status').dataset.state = state;
  $('pg-status').textContent = text;
  $('pg-output').setAttribute('aria-busy', state === 'generating' || state === 'loading' ? 'true' : 'false');
  pgRenderButtons();
}

function pgRenderButtons() {
  const job = active(ui.job);
  $('pg-run').disabled = pg.running || job;
  $('pg-stop').disabled = !pg.running || pg.stopping;
  $('pg-unload').disabled = pg.running || !(pg.status && pg.status.loaded);
  $('pg-clear').disabled = pg.running || !pg.messages.length;
  $('pg-side').disabled = !$('pg-lora').value;
  if (!$('pg-lora').value) $('pg-side').checked = false;
}

// Called by app.js's render(): a job takes the machine, so Generate waits for it.
function renderPlayground(j) {
  const note = $('pg-job-note');
  if (active(j) !== pg.jobActive) {  // a job that starts unloads the model: show what is loaded now
    pg.jobActive = active(j);
    pgRefreshStatus();
  }
  if (active(j)) {
    note.hidden = false;
    note.textContent = `A ${j.kind === 'train' ? 'training' : j.kind} job is running: the playground waits until it ends, ` +
      'because generating would compete with it for the CPU cores and memory. (Starting a job also stops a ' +
      'generation and unloads the playground\'s model.)';
  } else {
    note.hidden = true;
    note.textContent = '';
  }
  pgRenderButtons();
}

function pgRenderMode() {
  const chat = pgMode() === 'chat';
  for (const id of ['pg-chat-box']) $(id).hidden = !chat;
  $('pg-completion-box').hidden = chat;
}

function pgRenderChat() {
  const list = $('pg-chat');
  list.replaceChildren(...pg.messages.map(m => el('li', { class: `pg-msg pg-${m.role}` }, [
    el('span', { class: 'pg-role', text: m.role === 'user' ? 'You' : 'Assistant' }), el('span', { text: m.content })])));
  list.hidden = !pg.messages.length;
  pgRenderButtons();
}

function pgRenderLoaded(s) {
  pg.status = s;
  const l = s && s.loaded;
  $('pg-loaded').dataset.loaded = l ? 'true' : 'false';
  $('pg-loaded').textContent = l
    ? `Loaded: ${l.model}${l.lora ? ` + ${l.lora}` : ''} (weights ${l.weights}); it stays loaded for the next Generate.`
    : 'No model loaded: Generate loads the chosen one first (a large model takes a while; one model is kept at a time).';
  pgRenderButtons();
}

async function pgRefreshStatus() {
  try { pgRenderLoaded(await api('GET', '/api/playground')); } catch (_) { /* shown on the next Generate */ }
}

// The chosen adapter's base model and chat template (from its training_parameters.json).
async function pgAdapterDefaults(name) {
  pg.defaultsFor = name;
  if (!name) return;
  try {
    const r = await api('GET', `/api/runs/${encodeURIComponent(name)}/params`);
    const p = r.params || {};
    if (p.model && [...$('pg-model').options].some(o => o.value === p.model)) $('pg-model').value = p.model;
    const t = String(p.chat_template_file || '').toLowerCase();
    if ([...$('pg-template').options].some(o => o.value === t)) $('pg-template').value = t;
  } catch (_) { /* a run without parameters keeps the choices */ }
}

// Called by app.js's refreshLists(): the pickers, the run just trained chosen by default.
function playgroundLists(models, runs) {
  fillSelect('pg-model', models, '');
  const adapters = runs.filter(r => r.has_adapter).map(r => r.name);
  fillSelect('pg-lora', adapters, '(none: the base model alone)');
  if (pg.defaultsFor === null && adapters.length) {
    const just = ui.job.kind === 'train' && adapters.includes(ui.job.lora_name) ? ui.job.lora_name : adapters[0];
    $('pg-lora').value = just;
    pgAdapterDefaults(just);
  }
  pgRenderButtons();
}

function pgNumber(id) {
  const t = $(id).value.trim();
  return t === '' ? undefined : (isFinite(Number(t)) ? Number(t) : t);
}

function pgBody() {
  const b = { model: $('pg-model').value, lora: $('pg-lora').value, mode: pgMode(),
              side_by_side: $('pg-side').checked, temperature: pgNumber('pg-temperature'),
              top_p: pgNumber('pg-top-p'), max_new_tokens: pgNumber('pg-max-tokens') };
  const seed = pgNumber('pg-seed');
  if (seed !== undefined) b.seed = seed;
  if (b.mode === 'chat') {
    pg.pending = $('pg-message').value;
    b.messages = pg.messages.concat([{ role: 'user', content: pg.pending }]);
    if ($('pg-system').value.trim()) b.system = $('pg-system').value;
    b.chat_template = $('pg-template').value;
  } else {
    b.prompt = $('pg-prompt').value;
  }
  return b;
}

const PG_TITLES = { base: 'Base model', adapter: 'With the adapter' };

function pgColumns(names, lora) {
  pg.columns = names;
  $('pg-output').replaceChildren(...names.map(n => el('section', { class: 'pg-col', 'data-column': n }, [
    el('h3', { text: n === 'adapter' ? `${PG_TITLES.adapter} ${lora}` : PG_TITLES.base }),
    el('pre', { id: `pg-out-${n}`, class: 'pg-text', 'data-tokens': '0', 'data-done': '' }),
    el('div', { id: `pg-done-${n}`, class: 'note' })])));
  $('pg-output').dataset.columns = String(names.length);
}

const PG_DONE = { eos: 'ended (end-of-text token)', max_new_tokens: 'reached max new tokens', context: 'context full' };

function pgEvent(type, d) {
  if (type === 'start') {
    pgColumns(d.columns, d.lora);
    $('pg-seed-used').textContent = `seed ${d.seed} · prompt ${d.prompt_tokens} tokens`;
    $('pg-notes').textContent = (d.notes || []).join(' ');
    pgSetState('generating', 'generating…');
  } else if (type === 'token') {
    const out = $(`pg-out-${d.column}`);
    if (!out) return;
    out.textContent += d.text;
    out.dataset.tokens = String(d.n);
    out.scrollTop = out.scrollHeight;
  } else if (type === 'done') {
    const out = $(`pg-out-${d.column}`);
    if (out) out.dataset.done = d.reason;
    $(`pg-done-${d.column}`).textContent = `${d.tokens} tokens: ${PG_DONE[d.reason] || d.reason}`;
  } else if (type === 'error') {
    pgShowError({ message: d.message });
  } else if (type === 'end') {
    pg.end = d;
  }
}

function pgShowError(e) {
  clearErrors('pg');
  showError('pg', e);
}

// Reads the event stream of a fetch body, handing each event to pgEvent as it comes.
async function pgRead(res) {
  const reader = res.body.getReader(), dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += dec.decode(value, { stream: true });
    let tokens = false;
    for (let i; (i = buf.indexOf('\n\n')) >= 0;) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let type = 'message', data = '';
      for (const line of frame.split('\n')) {
        if (line.startsWith('event: ')) type = line.slice(7);
        else if (line.startsWith('data: ')) data += line.slice(6);
      }
      if (!data) continue;
      tokens = tokens || type === 'token';
      pgEvent(type, JSON.parse(data));
    }
    if (tokens) $('pg-output').dataset.chunks = String(++pg.chunks);
  }
}

async function pgGenerate() {
  clearErrors('pg');
  const body = pgBody();
  pg.running = true;
  pg.stopping = false;
  pg.end = null;
  pg.chunks = 0;
  $('pg-output').dataset.chunks = '0';
  pgSetState('loading', pg.status && pg.status.loaded ? 'starting…' : 'loading the model…');
  try {
    const res = await fetch('/api/playground/generate', {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });
    if (!res.ok) {
      let data = null;
      try { data = await res.json(); } catch (_) { /* not JSON */ }
      throw new ApiError(res.status, data);
    }
    await pgRead(res);
    const end = pg.end || { reason: 'error', message: 'the stream ended without its end event' };
    pgSetState(end.reason, end.message);
    if (body.mode === 'chat' && end.reason !== 'error') {
      // The conversation goes on with the adapter's answer (the base's when it is alone).
      const col = pg.columns.includes('adapter') ? 'adapter' : pg.columns[0];
      pg.messages.push({ role: 'user', content: pg.pending }, { role: 'assistant', content: $(`pg-out-${col}`).textContent });
      $('pg-message').value = '';
      pgRenderChat();
    }
  } catch (e) {
    pgSetState('error', 'not generated');
    pgShowError(e);
  } finally {
    pg.running = false;
    pgRenderButtons();
    pgRefreshStatus();
  }
}

async function pgStop() {
  pg.stopping = true;
  pgSetState('stopping', 'stopping…');
  try { await api('POST', '/api/playground/stop'); } catch (_) { /* it had just ended */ }
}

function wirePlayground() {
  FORMS.pg = 'pg-form';  // showError / clearErrors find the fields' error boxes in it
  $('pg-run').addEventListener('click', pgGenerate);
  $('pg-stop').addEventListener('click', pgStop);
  $('pg-clear').addEventListener('click', () => { pg.messages = []; pgRenderChat(); });
  $('pg-unload').addEventListener('click', async () => {
    try { pgRenderLoaded(await api('POST', '/api/playground/unload')); } catch (e) { pgShowError(e); }
  });
  $('pg-lora').addEventListener('change', () => { pgAdapterDefaults($('pg-lora').value); pgRenderButtons(); });
  for (const id of ['pg-mode-chat', 'pg-mode-completion']) $(id).addEventListener('change', pgRenderMode);
  $('pg-message').addEventListener('keydown', e => {  // Ctrl+Enter sends, as in chat apps
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey) && !$('pg-run').disabled) pgGenerate();
  });
  // The tabs say which one is shown (aria-selected), this one included.
  for (const b of document.querySelectorAll('nav .tab')) {
    b.addEventListener('click', () => {
      for (const x of document.querySelectorAll('nav .tab')) x.setAttribute('aria-selected', String(x === b));
      if (b.dataset.tab === 'playground') pgRefreshStatus();
    });
  }
  pgRenderMode();
  pgRenderChat();
  pgRefreshStatus();
  api('GET', '/api/playground').then(s => {
    $('pg-template').replaceChildren(el('option', { value: '', text: "the model's own" }),
                                     ...s.templates.map(t => el('option', { value: t, text: `built-in: ${t}` })));
    $('pg-max-tokens').max = String(s.limits.max_new_tokens);
    if (pg.defaultsFor) pgAdapterDefaults(pg.defaultsFor);
  }).catch(() => {});
}
