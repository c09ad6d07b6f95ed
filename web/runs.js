// The Past runs tab: the list of runs (open one, tick several to compare, delete one after a
// confirmation dialog), a run's chart with its YAML configuration and `tpro train` command,
// and the comparison: loss curves overlaid on one chart and the parameters side by side
// (those that differ first, or all). Deleting is refused by the server while a job trains,
// exports or evaluates the run; its message shows in the dialog.
'use strict';

const MAX_COMPARE = 8;  // OVERLAY_COLORS in chart.js
const runsUi = { compare: new Set(), deleting: '', opener: null, compared: [] };

function renderRuns(runs) {
  const body = $('runs-table').querySelector('tbody');
  const names = new Set(runs.map(r => r.name));
  for (const n of [...runsUi.compare]) if (!names.has(n)) runsUi.compare.delete(n);
  // The name is a button: Tab reaches it and Enter or Space opens the run (a click on the row too).
  body.replaceChildren(...runs.map(r => {
    const open = el('button', { type: 'button', class: 'run-open', text: r.name, 'aria-label': `show run ${r.name}` });
    const pick = el('input', { type: 'checkbox', class: 'run-compare', 'aria-label': `compare ${r.name}`,
                               checked: runsUi.compare.has(r.name) });
    pick.addEventListener('click', e => e.stopPropagation());
    pick.addEventListener('change', () => {
      if (pick.checked) runsUi.compare.add(r.name); else runsUi.compare.delete(r.name);
      renderCompareBar();
    });
    const del = el('button', { type: 'button', class: 'run-delete', text: 'Delete', 'aria-label': `delete run ${r.name}` });
    del.addEventListener('click', e => { e.stopPropagation(); askDelete(r, del); });
    const tr = el('tr', { class: 'clickable', 'data-run': r.name }, [
      el('td', {}, [open]), el('td', { text: r.steps ?? '-' }), el('td', { text: fmt(r.epoch, 2) }),
      el('td', { text: fmt(r.loss) }), el('td', { text: r.stop_reason || (r.has_adapter ? '' : 'unfinished') }),
      el('td', { text: String(r.checkpoints.length) }),
      el('td', { text: r.modified ? new Date(r.modified * 1000).toLocaleString() : '' }),
      el('td', { class: 'run-actions' }, [pick, del])]);
    tr.addEventListener('click', () => showRun(r.name));
    return tr;
  }));
  renderCompareBar();
}

function renderCompareBar() {
  const n = runsUi.compare.size;
  $('compare-run').disabled = n < 2 || n > MAX_COMPARE;
  $('compare-count').textContent = n > MAX_COMPARE ? `${n} runs ticked: compare at most ${MAX_COMPARE}`
    : n ? `${n} run${n === 1 ? '' : 's'} ticked${n < 2 ? ': tick another to compare' : ''}` : 'tick runs to compare them';
}

async function showRun(name) {
  ui.runName = name;
  $('run-detail').hidden = false;
  $('run-title').textContent = name;
  $('run-command-box').hidden = true;
  $('run-note').textContent = '';
  exportFor(name);
  try {
    const g = await api('GET', `/api/runs/${encodeURIComponent(name)}/graph`);
    ui.runChart.setRecords(g.records, { checkpoints: (g.checkpoints || []).map(c => c.step), events: g.events || [] });
  } catch (e) {
    ui.runChart.setRecords([]);
    $('run-title').textContent = `${name}: ${e.message}`;
  }
}

// The run's configuration as the CLI takes it (its training_parameters.json through the form's JSON).
async function runConfig(name) {
  const r = await api('GET', `/api/runs/${encodeURIComponent(name)}/params`);
  return api('POST', '/api/config/yaml', Object.assign({ lora_name: name }, r.params));
}

async function runConfigAction(what) {
  const name = ui.runName;
  $('run-note').textContent = '';
  try {
    const c = await runConfig(name);
    if (what === 'yaml') {
      downloadText(configFileName(name), c.yaml);
      $('run-note').textContent = `saved ${configFileName(name)}`;
    } else {
      $('run-command-text').textContent = c.command;
      $('run-command-box').hidden = false;
    }
  } catch (e) {
    $('run-note').textContent = `${name}: ${e.message}`;
  }
}

// ---- comparing runs ----

async function compareRuns() {
  const names = [...runsUi.compare];
  $('compare').hidden = false;
  $('compare-title').textContent = `Comparing ${names.join(', ')}`;
  const got = await Promise.all(names.map(async n => {
    const [g, p] = await Promise.all([
      api('GET', `/api/runs/${encodeURIComponent(n)}/graph`).catch(e => ({ error: e.message, records: [] })),
      api('GET', `/api/runs/${encodeURIComponent(n)}/params`).catch(e => ({ error: e.message, params: {} }))]);
    return { name: n, records: g.records || [], params: p.params || {}, notes: [g.error, p.error].filter(Boolean) };
  }));
  runsUi.compared = got;
  ui.compareChart.setSeries(got.map(r => ({ name: r.name, records: r.records })));
  const notes = got.filter(r => r.notes.length).map(r => `${r.name}: ${r.notes.join('; ')}`);
  $('compare-note').textContent = notes.join(' · ');
  renderCompareParams();
  $('compare-title').focus();
}

function paramText(v) {
  if (v === undefined) return '—';
  if (Array.isArray(v)) return v.join(', ');
  return typeof v === 'string' ? v : JSON.stringify(v);
}

// Parameters down, runs across; rows whose values differ are marked, and with "only
// differences" ticked the equal ones are left out.
function renderCompareParams() {
  const runs = runsUi.compared, only = $('compare-diff').checked;
  const keys = [];
  for (const f of ui.form.fields) if (runs.some(r => f.name in r.params)) keys.push(f.name);
  const table = $('compare-params');
  table.querySelector('thead').replaceChildren(el('tr', {}, [el('th', { scope: 'col', text: 'Parameter' }),
    ...runs.map(r => el('th', { scope: 'col', text: r.name }))]));
  const rows = [];
  for (const k of keys) {
    const vals = runs.map(r => paramText(r.params[k]));
    const differs = vals.some(v => v !== vals[0]);
    if (only && !differs) continue;
    rows.push(el('tr', { class: differs ? 'differs' : '', 'data-param': k }, [el('th', { scope: 'row', text: k }),
      ...vals.map(v => el('td', { text: v }))]));
  }
  if (!rows.length) rows.push(el('tr', {}, [el('td', { colspan: runs.length + 1,
    text: only ? 'these runs have the same parameters' : 'no parameters recorded' })]));
  table.querySelector('tbody').replaceChildren(...rows);
}

// ---- deleting a run ----

function askDelete(run, opener) {
  runsUi.deleting = run.name;
  runsUi.opener = opener;
  $('delete-text').textContent = `Delete the run '${run.name}'? Its folder in the loras folder is removed for good: ` +
    `${run.has_adapter ? 'the adapter, ' : ''}${run.checkpoints.length} checkpoint${run.checkpoints.length === 1 ? '' : 's'}, ` +
    'its logs and chart. Evaluations of it stay in evaluations.csv.';
  $('delete-error').textContent = '';
  $('delete-error').hidden = true;
  $('delete-confirm').disabled = false;
  $('delete-dialog').showModal();
  $('delete-cancel').focus();  // the safe choice has the focus
}

async function confirmDelete() {
  const name = runsUi.deleting;
  $('delete-confirm').disabled = true;
  try {
    await api('POST', `/api/runs/${encodeURIComponent(name)}/delete`, {});
  } catch (e) {
    $('delete-error').textContent = e.message;
    $('delete-error').hidden = false;
    $('delete-confirm').disabled = false;
    $('delete-cancel').focus();
    return;
  }
  const row = runsUi.opener && runsUi.opener.closest('tr');
  const next = row && (row.nextElementSibling || row.previousElementSibling);
  const nextName = next && next.dataset.run;
  runsUi.opener = null;
  $('delete-dialog').close();
  runsUi.compare.delete(name);
  if (ui.runName === name) { $('run-detail').hidden = true; ui.runName = ''; }
  $('runs-status').textContent = `deleted ${name}`;
  await refreshLists();
  // The focus goes to the neighbouring run, or to the list's heading when none is left.
  const target = nextName && document.querySelector(`#runs-table tr[data-run="${CSS.escape(nextName)}"] button.run-open`);
  (target || $('runs-heading')).focus();
}

function wireRuns() {
  $('run-copy').addEventListener('click', async () => {
    await guarded('train', () => copyParams(ui.runName));
    document.querySelector('nav .tab[data-tab="train"]').click();
  });
  $('run-yaml').addEventListener('click', () => runConfigAction('yaml'));
  $('run-command').addEventListener('click', () => runConfigAction('command'));
  $('run-command-copy').addEventListener('click', () => copyText($('run-command-text').textContent, $('run-note')));
  $('compare-run').addEventListener('click', () => compareRuns().catch(e => { $('compare-note').textContent = e.message; }));
  $('compare-diff').addEventListener('change', renderCompareParams);
  $('compare-close').addEventListener('click', () => { $('compare').hidden = true; $('compare-run').focus(); });
  $('delete-confirm').addEventListener('click', confirmDelete);
  $('delete-cancel').addEventListener('click', () => $('delete-dialog').close());
  // Closed by Cancel or Escape: the focus goes back to the button that opened it.
  $('delete-dialog').addEventListener('close', () => { if (runsUi.opener) runsUi.opener.focus(); runsUi.opener = null; });
  renderCompareBar();
}
