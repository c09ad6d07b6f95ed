// Training configurations as files and commands: save the Train form (or a past run's
// parameters) as the YAML file `tpro train --config` reads, load such a file into the form
// (its errors shown as the form shows them), and show the equivalent `tpro train` command.
// The server writes and reads the text (POST /api/config/yaml, /api/config/parse) with the
// CLI's own field table, so the keys, flags and quoting are the CLI's.
'use strict';

const MAX_CONFIG_BYTES = 256 * 1024;

// A file download of text, named `name`.
function downloadText(name, text) {
  const url = URL.createObjectURL(new Blob([text], { type: 'application/yaml' }));
  const a = el('a', { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

function configFileName(name) {
  const stem = String(name || '').trim().replace(/[^A-Za-z0-9._-]+/g, '_').replace(/^[._]+/, '');
  return `${stem || 'tpro-config'}.yaml`;
}

async function saveFormConfig() {
  const v = ui.form.values();
  const r = await api('POST', '/api/config/yaml', v);
  downloadText(configFileName(v.lora_name), r.yaml);
  $('config-note').textContent = `saved ${configFileName(v.lora_name)}`;
}

async function showFormCommand() {
  const r = await api('POST', '/api/config/yaml', ui.form.values());
  $('config-command-text').textContent = r.command;
  $('config-command-box').hidden = false;
}

// Fills the form from a YAML file: every parameter (the file's values, the defaults for the
// rest), then the first problem Start would have, next to its field.
async function loadFormConfig(file) {
  if (!file) return;
  if (file.size > MAX_CONFIG_BYTES) throw new Error(`${file.name} is ${file.size} bytes, more than the 256 KiB a config may have`);
  const r = await api('POST', '/api/config/parse', { yaml: await file.text(), name: file.name });
  ui.form.fill(r.params, true);
  $('f-output_dir').value = r.params.output_dir || '';
  updateStartNote();
  schedulePlan();
  $('config-note').textContent = `loaded ${file.name}: ${r.keys.length} parameter${r.keys.length === 1 ? '' : 's'} ` +
    'set, the others at their defaults';
  if (r.problem) showError('train', r.problem);
}

function wireConfig() {
  $('config-save').addEventListener('click', () => guarded('train', saveFormConfig));
  $('config-command').addEventListener('click', () => guarded('train', showFormCommand));
  $('config-load').addEventListener('change', async () => {
    $('config-note').textContent = '';
    await guarded('train', () => loadFormConfig($('config-load').files[0]));
    $('config-load').value = '';  // the same file can be loaded again
  });
  $('config-copy').addEventListener('click', () => copyText($('config-command-text').textContent, $('config-note')));
}

// Copies text to the clipboard where the page may; says so in `note`.
async function copyText(text, note) {
  try {
    await navigator.clipboard.writeText(text);
    note.textContent = 'copied to the clipboard';
  } catch (_) {
    note.textContent = 'select the command and copy it (the browser refused the clipboard)';
  }
}
