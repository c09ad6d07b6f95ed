// The Past runs and Perplexity tabs' tools, in a real browser (as serve_ui.test.mjs): two runs
// compared (loss curves overlaid in colours of 3:1 contrast, parameters side by side); the
// Train form saved as a YAML file, loaded back (and bad files refused at their line and field)
// and shown as its `tpro train` command; a run deleted only after the confirmation dialog
// (focus on Cancel, Escape closes it, focus returned) and refused while a job reads it; the
// evaluation queue (models x adapters, skipping what evaluations.csv holds, redo), the results
// sorted by column buttons with aria-sort, and a comment saved back to evaluations.csv.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadPlaywright, makeFixture, startServer, stopServer, launchBrowser, artifactsDir } from './harness.mjs';

const WAIT = { timeout: 60000 };
let dir, root, server, browser, page;
const pageErrors = [];
const shots = artifactsDir();
const shot = name => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

async function openPage() {
  page = await browser.context.newPage();
  page.on('pageerror', e => pageErrors.push(e.message));
  page.on('console', m => {
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (400|409) /.test(m.text()))
      pageErrors.push(m.text());
  });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]', WAIT);
}

async function setField(name, value) {
  const input = page.locator(`#f-${name}`);
  const where = await input.evaluate(e => ({ closed: e.closest('details:not([open])')?.id, panel: e.closest('.subpanel')?.id }));
  if (where.closed) await page.click(`#${where.closed} > summary`);
  if (where.panel) await page.click(`#tab-${where.panel.slice(2)}`);
  if (typeof value === 'boolean') await input.setChecked(value);
  else await input.fill(String(value));
}

async function post(p, body) {
  const r = await fetch(new URL(p, server.url), { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                                  body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}
const getJson = async p => (await fetch(new URL(p, server.url))).json();

async function waitJobDone() {
  for (let i = 0; i < 600; i++) {
    const j = await getJson('/api/job');
    if (['finished', 'stopped', 'failed'].includes(j.state)) return j;
    await new Promise(res => setTimeout(res, 100));
  }
  throw new Error('the job did not end');
}

function contrast(a, b) {
  const lum = hex => {
    const c = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map(v => (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

async function train(name, extra) {
  const run = { model: 'tiny', lora_name: name, raw_text_file: 'sample.txt', cutoff_len: 64, micro_batch_size: 2,
                max_steps: 4, threads: 1, eval_steps: 0, warmup_steps: 0, learning_rate: 1e-3, lora_rank: 4,
                lora_alpha: 8, save_steps_under_loss: 0, ...extra };
  const r = await post('/api/train', run);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((await waitJobDone()).state, 'finished');
}

before(async () => {
  const { chromium } = loadPlaywright();
  dir = makeFixture();
  root = fs.realpathSync(dir);
  // A long text: an evaluation of it (stride 1) runs until it is stopped.
  const sample = fs.readFileSync(path.join(dir, 'data', 'sample.txt'), 'utf8');
  fs.writeFileSync(path.join(dir, 'data', 'long.txt'), sample.repeat(Math.ceil(400000 / sample.length)));
  server = await startServer(dir);
  await train('run-a', {});
  await train('run-b', { lora_rank: 8, learning_rate: 2e-3 });
  browser = await launchBrowser(chromium);
  await openPage();
});

after(async () => {
  if (browser) await browser.context.close();
  await stopServer(server);
  if (browser) fs.rmSync(browser.profile, { recursive: true, force: true });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('two runs compared: loss curves overlaid, parameters side by side', async () => {
  await page.click('nav .tab[data-tab="runs"]');
  await page.locator('#runs-table tr[data-run="run-b"]').waitFor(WAIT);
  assert.ok(await page.locator('#compare-run').isDisabled());
  await page.check('#runs-table tr[data-run="run-a"] input.run-compare');
  assert.equal(await page.locator('#compare-count').textContent(), '1 run ticked: tick another to compare');
  await page.check('#runs-table tr[data-run="run-b"] input.run-compare');
  assert.ok(await page.locator('#compare-run').isEnabled());
  assert.ok(await page.locator('#run-detail').isHidden(), 'ticking a run opened it');
  await page.click('#compare-run');
  await page.waitForFunction(() => document.getElementById('compare-chart').dataset.series === '2', null, WAIT);
  const [a, b] = [await getJson('/api/runs/run-a/graph'), await getJson('/api/runs/run-b/graph')];
  const d = await page.locator('#compare-chart').evaluate(e => ({ ...e.dataset }));
  assert.equal(Number(d.points), a.records.length + b.records.length);
  const colors = JSON.parse(d.colors);
  assert.equal(new Set(colors).size, 2);
  for (const c of await page.evaluate(() => OVERLAY_COLORS)) assert.ok(contrast(c, '#ffffff') >= 3, `${c} contrast`);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'compare-title');
  assert.equal(await page.locator('#compare-title').textContent(), 'Comparing run-a, run-b');
  // Hovering names both runs.
  const box = await page.locator('#compare-chart').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForSelector('#compare-chart-tip:not([hidden])', WAIT);
  assert.match(await page.locator('#compare-chart-tip').textContent(), /^run-a: step \d+ · epoch [\d.]+ · loss [\d.]+\nrun-b: step /);
  await page.mouse.move(0, 0);
  // Parameters: only the differing ones first, then all.
  const cells = async k => page.locator(`#compare-params tr[data-param="${k}"] td`).allTextContents();
  assert.deepEqual(await cells('lora_rank'), ['4', '8']);
  assert.deepEqual(await cells('learning_rate'), ['0.001', '0.002']);
  assert.equal(await page.locator('#compare-params tr[data-param="cutoff_len"]').count(), 0);
  await page.uncheck('#compare-diff');
  assert.deepEqual(await cells('cutoff_len'), ['64', '64']);
  assert.equal(await page.locator('#compare-params tr[data-param="lora_rank"]').getAttribute('class'), 'differs');
  await shot('runs-01-compare');
  await page.click('#compare-close');
  assert.ok(await page.locator('#compare').isHidden());
});

test('the form saved as YAML, loaded back, and shown as its tpro train command', async () => {
  await page.click('nav .tab[data-tab="train"]');
  await setField('model', 'tiny');
  await setField('lora_name', 'yaml run');
  await setField('raw_text_file', 'sample.txt');
  await setField('lora_rank', '16');
  await page.click('#config-command');
  await page.waitForSelector('#config-command-box:not([hidden])', WAIT);
  // The page opened after run-b, so the form holds run-b's parameters with these changes.
  const cmd0 = await page.locator('#config-command-text').textContent();
  assert.ok(cmd0.startsWith(`tpro train --model=${root}/models/tiny '--lora-name=yaml run' --output-dir=${root}/loras `), cmd0);
  assert.match(cmd0, / --lora-rank=16 /);
  assert.match(cmd0, / --learning-rate=0\.002 /);
  assert.ok(cmd0.includes(` --raw-text-file=${root}/data/sample.txt`), cmd0);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#config-save')]);
  assert.equal(download.suggestedFilename(), 'yaml_run.yaml');
  const saved = path.join(dir, 'saved.yaml');
  fs.copyFileSync(await download.path(), saved);
  const yaml = fs.readFileSync(saved, 'utf8');
  assert.match(yaml, /^lora_rank: 16$/m);
  assert.match(yaml, new RegExp(`^model: "${root}/models/tiny"$`, 'm'));

  await setField('lora_rank', '2');
  await setField('model', '');
  await page.setInputFiles('#config-load', saved);
  await page.waitForFunction(() => document.getElementById('config-note').textContent.startsWith('loaded'), null, WAIT);
  assert.match(await page.locator('#config-note').textContent(), /^loaded saved\.yaml: \d+ parameters set, the others at their defaults$/);
  assert.equal(await page.locator('#f-lora_rank').inputValue(), '16');
  assert.equal(await page.locator('#f-model').inputValue(), 'tiny');
  assert.equal(await page.locator('#f-raw_text_file').inputValue(), 'sample.txt');
  assert.equal(await page.locator('#f-lora_name').inputValue(), 'yaml run');
  assert.equal(await page.locator('#f-output_dir').inputValue(), '');
  assert.ok(await page.locator('#form-error').isHidden());
  await shot('runs-02-yaml-loaded');

  // A file that is not YAML: a clear error; a bad value: next to its field; a runnable problem too.
  const load = async (name, text) => {
    await page.setInputFiles('#config-load', { name, mimeType: 'application/yaml', buffer: Buffer.from(text) });
  };
  await load('bad.yaml', 'lora_rank: [8\n');
  await page.waitForSelector('#form-error:not([hidden])', WAIT);
  assert.match(await page.locator('#form-error').textContent(), /^bad\.yaml:2:1: invalid YAML: /);
  await load('value.yaml', 'model: tiny\nlora_rank: many\n');
  await page.waitForFunction(() => document.getElementById('err-lora_rank').textContent !== '', null, WAIT);
  assert.match(await page.locator('#err-lora_rank').textContent(), /^value\.yaml:2:1: lora_rank expects /);
  assert.equal(await page.locator('#f-lora_rank').inputValue(), '16', 'a refused file changed the form');
  await load('partial.yaml', 'lora_name: partial\nlora_rank: 8\n');
  await page.waitForFunction(() => document.getElementById('err-model').textContent !== '', null, WAIT);
  assert.match(await page.locator('#err-model').textContent(), /model is required/);
  assert.equal(await page.locator('#f-lora_rank').inputValue(), '8');
  assert.equal(await page.locator('#f-model').inputValue(), '');

  // A past run's command, from its training_parameters.json.
  await page.click('nav .tab[data-tab="runs"]');
  await page.click('#runs-table tr[data-run="run-a"] button.run-open');
  await page.click('#run-command');
  await page.waitForSelector('#run-command-box:not([hidden])', WAIT);
  const cmd = await page.locator('#run-command-text').textContent();
  assert.match(cmd, new RegExp(`^tpro train --model=${root}/models/tiny --lora-name=run-a --output-dir=${root}/loras `));
  assert.match(cmd, / --lora-rank=4 .*--max-steps=4 /);
});

test('deleting a run asks first, keeps the focus in place, and is refused while a job reads it', async () => {
  await page.click('nav .tab[data-tab="runs"]');
  const delB = page.locator('#runs-table tr[data-run="run-b"] button.run-delete');
  await delB.click();
  await page.waitForSelector('#delete-dialog[open]', WAIT);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'delete-cancel');
  assert.match(await page.locator('#delete-text').textContent(), /^Delete the run 'run-b'\? .*removed for good/);
  await shot('runs-03-delete-dialog');
  await page.keyboard.press('Escape');
  await page.waitForFunction(() => !document.getElementById('delete-dialog').open, null, WAIT);
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'delete run run-b');
  assert.ok(fs.existsSync(path.join(dir, 'loras', 'run-b')));

  await delB.click();
  await page.click('#delete-confirm');
  await page.waitForSelector('#runs-table tr[data-run="run-b"]', { state: 'detached', ...WAIT });
  assert.ok(!fs.existsSync(path.join(dir, 'loras', 'run-b')));
  assert.deepEqual(fs.readdirSync(path.join(dir, 'loras')).filter(n => n.startsWith('.')), []);
  assert.equal(await page.locator('#runs-status').textContent(), 'deleted run-b');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'show run run-a');

  // While an evaluation reads run-a, its delete is refused in the dialog.
  const r = await post('/api/perplexity', { model: 'tiny', lora: 'run-a', text_file: 'long.txt', stride: 1,
                                            max_length: 256, threads: 1 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await page.click('#runs-table tr[data-run="run-a"] button.run-delete');
  await page.click('#delete-confirm');
  await page.waitForSelector('#delete-error:not([hidden])', WAIT);
  assert.match(await page.locator('#delete-error').textContent(), /^run 'run-a' is in use: job \d+ \(perplexity, .*\) is evaluating it/);
  assert.ok(await page.locator('#delete-dialog').evaluate(d => d.open));
  await shot('runs-04-delete-refused');
  await page.click('#delete-cancel');
  assert.equal((await post('/api/stop', {})).status, 200);
  assert.equal((await waitJobDone()).state, 'stopped');
  assert.ok(fs.existsSync(path.join(dir, 'loras', 'run-a', 'adapter_config.json')));
});

test('the evaluation queue: models x adapters, skipping what was evaluated, redo', async () => {
  await page.click('nav .tab[data-tab="perplexity"]');
  const data = (await getJson('/api/data')).filter(d => d.kind !== 'folder').map(d => d.path).sort();
  assert.deepEqual(await page.$$eval('#dl-ppl-text option', os => os.map(o => o.value).sort()), data);
  await page.selectOption('#ppl-model', ['tiny']);
  await page.selectOption('#ppl-lora', [{ value: '' }, { value: 'run-a' }]);
  await page.fill('#ppl-text', 'short.txt');
  await page.fill('#ppl-stride', '16');
  await page.fill('#ppl-max-length', '32');
  await page.click('#ppl-run');
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'finished' &&
                             document.getElementById('status').dataset.kind === 'perplexity', null, WAIT);
  await page.waitForFunction(() => document.querySelectorAll('#ppl-table tbody tr').length === 2, null, WAIT);
  assert.deepEqual(await page.$$eval('#ppl-queue li', ls => ls.map(l => l.dataset.state)), ['done', 'done']);
  assert.match(await page.locator('#ppl-queue li').nth(1).textContent(), /^tiny \+ run-a: done · perplexity \d+\.\d{3}$/);
  assert.equal(await page.locator('#ppl-status').textContent(), 'perplexity: 2 evaluated, 0 skipped');

  // The same again: nothing runs.
  await page.click('#ppl-run');
  await page.waitForFunction(() => document.getElementById('ppl-summary').textContent !== '', null, WAIT);
  assert.equal(await page.locator('#ppl-summary').textContent(),
               'Nothing to evaluate: all 2 combinations are in evaluations.csv already (tick "redo" to evaluate again).');
  assert.equal(await page.locator('#ppl-skipped li').count(), 2);
  assert.match(await page.locator('#ppl-skipped li').first().textContent(), /^tiny \(base\): skipped, evaluated \d{4}-/);

  // Another model beside it: only the new pair runs, the other is listed as skipped.
  await page.selectOption('#ppl-model', ['tiny', 'tiny.gguf']);
  await page.selectOption('#ppl-lora', [{ value: '' }]);
  await page.click('#ppl-run');
  await page.waitForFunction(() => document.querySelectorAll('#ppl-table tbody tr').length === 3, null, WAIT);
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'finished', null, WAIT);
  assert.deepEqual(await page.$$eval('#ppl-queue li', ls => ls.map(l => l.textContent.split(':')[0])), ['tiny.gguf (base)']);
  assert.equal(await page.locator('#ppl-skipped li').count(), 1);
  assert.equal(await page.locator('#ppl-status').textContent(), 'perplexity: 1 evaluated, 1 skipped');

  await page.check('#ppl-redo');
  await page.click('#ppl-run');
  await page.waitForFunction(() => document.querySelectorAll('#ppl-table tbody tr').length === 5, null, WAIT);
  await page.waitForFunction(() => document.getElementById('status').dataset.state === 'finished', null, WAIT);
  assert.ok(await page.locator('#ppl-skipped-box').isHidden());
  await page.uncheck('#ppl-redo');
  await shot('runs-05-queue');
});

test('results sort by column buttons and comments are saved to evaluations.csv', async () => {
  const th = k => page.locator(`#ppl-table th:has(button[data-sort="${k}"])`);
  assert.equal(await th('date').getAttribute('aria-sort'), 'descending');
  assert.equal(await th('perplexity').getAttribute('aria-sort'), 'none');
  const column = i => page.$$eval(`#ppl-table tbody tr td:nth-child(${i})`, tds => tds.map(t => t.textContent));
  const dates = await column(8);
  assert.deepEqual(dates, dates.slice().sort().reverse());
  await page.click('#ppl-table button[data-sort="perplexity"]');
  assert.equal(await th('perplexity').getAttribute('aria-sort'), 'descending');
  assert.equal(await th('date').getAttribute('aria-sort'), 'none');
  assert.equal(await page.evaluate(() => document.activeElement.dataset.sort), 'perplexity');
  let ppl = (await column(4)).map(Number);
  assert.deepEqual(ppl, ppl.slice().sort((x, y) => y - x));
  await page.keyboard.press('Enter');  // the focused header button: the other way
  assert.equal(await th('perplexity').getAttribute('aria-sort'), 'ascending');
  ppl = (await column(4)).map(Number);
  assert.deepEqual(ppl, ppl.slice().sort((x, y) => x - y));
  await page.click('#ppl-table button[data-sort="date"]');

  const first = page.locator('#ppl-table tbody tr').first();
  const row = Number(await first.getAttribute('data-row'));
  const comment = first.locator('textarea.comment');
  assert.match(await comment.getAttribute('aria-label'), /^comment on tiny/);
  await comment.fill('good, "better"\nbest');
  await comment.press('Tab');
  await page.waitForFunction(() => document.querySelector('#ppl-table tbody tr .comment-state').textContent === 'saved',
                             null, WAIT);
  const csv = fs.readFileSync(path.join(dir, 'loras', 'evaluations.csv'), 'utf8');
  assert.ok(csv.includes(',"good, ""better""\nbest"\n'), csv);
  assert.equal((await getJson('/api/evaluations')).rows[row].comment, 'good, "better"\nbest');
  await shot('runs-06-comment');
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]', WAIT);
  await page.click('nav .tab[data-tab="perplexity"]');
  assert.equal(await page.locator(`#ppl-table tbody tr[data-row="${row}"] textarea.comment`).inputValue(), 'good, "better"\nbest');
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
