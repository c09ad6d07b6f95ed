// The export form on the Past runs tab: merge an adapter into its base (a Hugging Face folder
// or a GGUF file in the models folder), convert it to a GGUF adapter, or zip its folder, as a
// server job with a progress bar (POST /api/export). An output that exists is replaced only
// after "Replace it"; a zip or GGUF adapter gets a download link (GET /api/download).
'use strict';

const EXPORT_TYPES = {
  merge: ['f32', 'bf16', 'f16'], merge_gguf: ['f32', 'bf16', 'f16', 'q8_0', 'q4_0', 'q4_k', 'q6_k'],
  adapter_gguf: ['f32', 'f16', 'bf16'], zip: [],
};

function exportDefaultOut(kind, lora) {
  const stem = String(lora || 'adapter').replace(/\.gguf$/, '');
  return { merge: `${stem}-merged`, merge_gguf: `${stem}-merged.gguf`, adapter_gguf: `${stem}.gguf`, zip: `${stem}.zip` }[kind];
}

function exportKindChanged() {
  const kind = $('ex-kind').value, types = EXPORT_TYPES[kind];
  const keep = $('ex-dtype').value;
  $('ex-dtype').replaceChildren(...types.map(t => el('option', { value: t, text: t })));
  if (types.includes(keep)) $('ex-dtype').value = keep;
  $('ex-dtype').closest('.field').hidden = !types.length;
  $('ex-model').closest('.field').hidden = kind === 'zip';
  $('ex-checkpoints').closest('.field').hidden = kind !== 'zip';
  $('ex-out').placeholder = exportDefaultOut(kind, $('ex-lora').value);
}

// The run shown above: its name, and its base model when the models folder has it.
async function exportFor(name) {
  $('ex-lora').value = name;
  exportKindChanged();
  try {
    const r = await api('GET', `/api/runs/${encodeURIComponent(name)}/params`);
    const m = r.params && r.params.model;
    if (m && [...$('ex-model').options].some(o => o.value === m)) $('ex-model').value = m;
  } catch (_) { /* a run without parameters keeps the chosen model */ }
}

function exportBody(overwrite) {
  const kind = $('ex-kind').value, b = { kind, lora: $('ex-lora').value.trim() };
  if (kind !== 'zip') { b.model = $('ex-model').value; b.dtype = $('ex-dtype').value; }
  else b.include_checkpoints = $('ex-checkpoints').checked;
  if ($('ex-out').value.trim()) b.out = $('ex-out').value.trim();
  if (overwrite) b.overwrite = true;
  return b;
}

async function startExport(overwrite) {
  clearErrors('ex');
  $('ex-exists').hidden = true;
  $('ex-result').hidden = true;
  try {
    // Running now, before its event comes; events already here for this job are newer.
    const j = await api('POST', '/api/export', exportBody(overwrite));
    if (j.id > ui.job.id) applyState(j);
  } catch (e) {
    if (e.status === 409 && e.type === 'exists') {  // ask before replacing
      $('ex-exists-text').textContent = `${e.message} `;
      $('ex-exists').hidden = false;
      return;
    }
    showError('ex', e);
  }
}

function exportStatus(j) {
  const p = j.progress || {}, x = j.export || {};
  if (j.state === 'failed') return `export failed: ${j.error}`;
  if (j.state === 'finished') return `exported ${x.lora} to ${j.result && j.result.out}`;
  const share = p.total > 0 ? ` ${Math.floor(100 * p.done / p.total)}%` : '';
  return `export (${x.kind}) ${j.state}:${share} ${p.what || ''}`;
}

function renderExport(j) {
  const mine = j.kind === 'export';
  $('ex-run').disabled = active(j);
  $('ex-stop').disabled = !(mine && active(j));
  $('ex-status').textContent = mine ? exportStatus(j) : '';
  $('ex-status').dataset.state = mine ? j.state : '';
  if (mine && j.progress) {
    $('ex-progress').max = Math.max(1, j.progress.total);
    $('ex-progress').value = j.progress.done;
  }
}

// After the job: a link to what a zip or an adapter GGUF wrote in the loras folder.
function exportFinished(j) {
  if (j.kind !== 'export') return;
  if (j.state === 'failed') { showError('ex', { message: j.error, field: j.error_field }); return; }
  if (j.state !== 'finished' || !j.result) return;
  const where = j.result.kind === 'zip' || j.result.kind === 'adapter_gguf' ? 'loras' : 'models';
  const box = $('ex-result');
  box.replaceChildren(`written to the ${where} folder: ${j.result.out}`);
  if (where === 'loras') {
    box.append(' ', el('a', { id: 'ex-download', href: `/api/download?path=${encodeURIComponent(j.result.out)}`,
                               download: j.result.out, text: 'Download' }));
  }
  box.hidden = false;
}

function wireExport() {
  $('ex-kind').addEventListener('change', exportKindChanged);
  $('ex-lora').addEventListener('input', exportKindChanged);
  $('ex-run').addEventListener('click', () => startExport(false));
  $('ex-replace').addEventListener('click', () => startExport(true));
  $('ex-stop').addEventListener('click', () => api('POST', '/api/stop').catch(e => showError('ex', e)));
  exportKindChanged();
}
