// The web UI of `tpro serve` in a real browser (Debian's chromium, headless, driven by
// playwright-core), one scenario in order: the form has every schema parameter; bad values
// show their error next to the field; Start runs a tiny training and the loss chart grows,
// with a progress bar and the progress in the page title; Start is disabled while it runs and
// a second start is refused; "Save checkpoint now" writes a checkpoint folder; closing the
// page leaves training running and a new page reconnects to it; stop-at-loss changed mid-run
// ends the run; a reopened page says that Start would continue the existing adapter; a failing
// resume shows its error as a banner; the run appears among past runs (reached by keyboard)
// with its chart and its parameters can be copied into the form; the dataset check reports
// blocks; the perplexity tab adds a row. Screenshots of each stage go to $TPRO_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadPlaywright, makeFixture, startServer, stopServer, launchBrowser, artifactsDir } from './harness.mjs';

const WAIT = { timeout: 60000 };
const RUN = 'ui-run';
let dir, server, browser, page;
const pageErrors = [];
const shots = artifactsDir();

async function shot(name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

async function openPage() {
  page = await browser.context.newPage();
  page.on('pageerror', e => pageErrors.push(e.message));
  // Chromium logs every 4xx response as a console error; those are this test's own bad requests.
  page.on('console', m => {
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (400|409) /.test(m.text()))
      pageErrors.push(m.text());
  });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]', WAIT);
}

// Sets a form field as a user would: opening its collapsed section or its dataset tab first.
async function setField(name, value) {
  const input = page.locator(`#f-${name}`);
  const where = await input.evaluate(e => ({ closed: e.closest('details:not([open])')?.id, panel: e.closest('.subpanel')?.id }));
  if (where.closed) await page.click(`#${where.closed} > summary`);
  if (where.panel) await page.click(`#tab-${where.panel.slice(2)}`);
  if (typeof value === 'boolean') await input.setChecked(value);
  else if (await input.evaluate(e => e.tagName === 'SELECT')) await input.selectOption(String(value));
  else await input.fill(String(value));
}

async function fieldError(name) {
  const err = page.locator(`#err-${name}`);
  await page.waitForFunction(n => document.getElementById(`err-${n}`).textContent !== '', name, WAIT);
  return err.textContent();
}

const chartPoints = sel => page.locator(sel).evaluate(c => Number(c.dataset.points));
const statusState = () => page.locator('#status').getAttribute('data-state');
const api = async p => (await fetch(new URL(p, server.url))).json();

before(async () => {
  const { chromium } = loadPlaywright();
  dir = makeFixture();
  server = await startServer(dir);
  browser = await launchBrowser(chromium);
  await openPage();
});

after(async () => {
  if (browser) await browser.context.close();
  await stopServer(server);
  if (browser) fs.rmSync(browser.profile, { recursive: true, force: true });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the form shows every parameter of the schema', async () => {
  const schema = await api('/api/schema');
  assert.ok(schema.fields.length > 60);
  for (const f of schema.fields) assert.equal(await page.locator(`#f-${f.name}`).count(), 1, `no input for ${f.name}`);
  assert.equal(await page.locator('#f-lora_rank').inputValue(), '32');  // schema defaults filled in
  assert.equal(await page.locator('#f-lr_scheduler_type').inputValue(), 'linear');
  await shot('01-form');
});

test('a bad value is shown next to its field', async () => {
  await setField('model', 'tiny');
  await setField('lora_name', RUN);
  await setField('raw_text_file', 'sample.txt');
  await setField('lora_rank', '0');
  await page.click('#start');
  assert.equal(await fieldError('lora_rank'), 'lora_rank expects an integer in [1, 4096], got 0');
  assert.equal(await page.locator('.field[data-field="lora_rank"]').getAttribute('class'), 'field invalid');
  await shot('02-validation-error');
  await setField('lora_rank', '4');
  await setField('raw_text_file', '../models/tiny/config.json');
  await page.click('#start');
  assert.match(await fieldError('raw_text_file'), /^raw_text_file: '..\/models\/tiny\/config.json' is outside the data folder/);
  assert.equal(await statusState(), 'idle');  // nothing started
  await shot('02b-path-outside');
});

test('Check dataset reports the blocks the run would train on', async () => {
  await setField('raw_text_file', 'sample.txt');
  await setField('cutoff_len', '64');
  await page.click('#check');
  await page.waitForFunction(() => document.getElementById('check-report').textContent.includes('Training blocks:'),
                             null, WAIT);
  assert.match(await page.locator('#check-report').textContent(), /^Training blocks: \d+\n/);
  await shot('02c-dataset-check');
});

test('Start runs a tiny training and the chart updates', async () => {
  const params = { raw_text_file: 'sample.txt', lora_rank: 4, lora_alpha: 8, cutoff_len: 64, micro_batch_size: 2,
                   max_steps: 1000000, threads: 1, save_steps_under_loss: 0, eval_steps: 0, warmup_steps: 0,
                   learning_rate: '1e-3', lora_dropout: 0 };
  for (const [k, v] of Object.entries(params)) await setField(k, v);
  await page.click('#start');
  await page.waitForSelector('#status[data-state="running"]', WAIT);
  assert.equal(await page.locator('#err-raw_text_file').textContent(), '');  // the old error was cleared
  await page.waitForFunction(() => Number(document.getElementById('chart').dataset.points) >= 3, null, WAIT);
  const first = await chartPoints('#chart');
  const image1 = await page.locator('#chart').evaluate(c => c.toDataURL());
  await page.waitForFunction(n => Number(document.getElementById('chart').dataset.points) >= n + 10, first, WAIT);
  // The redraw may land a frame after the point count (a loaded machine): wait for it, bounded.
  const redrawn = await page.waitForFunction(prev => document.getElementById('chart').toDataURL() !== prev, image1, WAIT)
    .then(() => true, () => false);
  assert.ok(redrawn, 'the chart was not redrawn');
  const status = await page.locator('#status').textContent();
  assert.match(status, new RegExp(`^${RUN}: running · step \\d+/1000000 · epoch [\\d.]+ · [\\d.]+ it/s · ETA \\d+:\\d\\d:\\d\\d`));
  assert.match(status, /loss \d+\.\d{4}/);
  // The progress bar counts the steps; the title shows the share done (with a decimal under 10%).
  const bar = await page.locator('#train-progress').evaluate(b => ({ value: b.value, max: b.max }));
  assert.equal(bar.max, 1000000);
  assert.ok(bar.value >= first, `progress ${bar.value} behind the chart's ${first} points`);
  assert.match(await page.locator('#train-eta').textContent(), /^0\.0% · ETA \d+:\d\d:\d\d$/);
  assert.equal(await page.title(), `0.0% · ${RUN} · tpro`);
  await shot('03-training');
});

test('Start is disabled while training, and a second start is refused anyway', async () => {
  assert.ok(await page.locator('#start').isDisabled());
  assert.ok(await page.locator('#ppl-run').isDisabled());
  // A page whose button is still enabled (say, a stale one) gets the server's refusal.
  await page.locator('#start').evaluate(b => { b.disabled = false; b.click(); });
  await page.waitForSelector('#form-error:not([hidden])', WAIT);
  assert.match(await page.locator('#form-error').textContent(),
               new RegExp(`^a training run '${RUN}' is already running \\(job 1, started `));
  assert.equal(await statusState(), 'running');
  await page.waitForFunction(() => document.getElementById('start').disabled, null, WAIT);  // the next step re-renders
  await shot('04-second-start-refused');
});

test('Save checkpoint now writes a checkpoint folder', async () => {
  await page.click('#save-now');
  await page.waitForFunction(() => document.getElementById('log').textContent.includes('checkpoint saved:'), null, WAIT);
  const runDir = path.join(dir, 'loras', RUN);
  const cks = fs.readdirSync(runDir).filter(n => n.startsWith('checkpoint-'));
  assert.equal(cks.length, 1, `checkpoints: ${cks}`);
  for (const f of ['adapter_model.safetensors', 'adapter_config.json', 'optimizer.safetensors', 'trainer_state.json'])
    assert.ok(fs.existsSync(path.join(runDir, cks[0], f)), `${cks[0]}/${f} missing`);
  await shot('05-checkpoint-saved');
});

test('closing the page leaves training running; a new page shows it', async () => {
  await page.close();
  const a = await api('/api/job');
  await new Promise(r => setTimeout(r, 1500));
  const b = await api('/api/job');
  assert.equal(b.state, 'running');
  assert.ok(b.step > a.step, `no progress without a page: ${a.step} -> ${b.step}`);
  await openPage();
  await page.waitForSelector('#status[data-state="running"]', WAIT);
  const restored = await chartPoints('#chart');
  assert.ok(restored >= b.step, `chart restored ${restored} points, the run had ${b.step} steps`);
  await page.waitForFunction(n => Number(document.getElementById('chart').dataset.points) > n, restored, WAIT);
  assert.match(await page.locator('#log').textContent(), /checkpoint saved:/);  // history came back too
  await shot('06-reconnected');
});

test('stop-at-loss changed mid-run is honoured', async () => {
  await page.fill('#ctl-stop-loss', '-1');
  await page.click('#ctl-apply');
  await page.waitForFunction(() => document.getElementById('ctl-error').textContent !== '', null, WAIT);
  assert.equal(await page.locator('#ctl-error').textContent(), 'stop_at_loss expects a number in [0, 1000], got -1');
  assert.equal(await statusState(), 'running');
  // The loss of this run is around 5-8, so 900 stops it at the next step.
  await page.fill('#ctl-stop-loss', '900');
  await page.click('#ctl-apply');
  await page.waitForSelector('#status[data-state="finished"]', WAIT);
  assert.match(await page.locator('#status').textContent(), /reached stop_at_loss 900/);
  const log = JSON.parse(fs.readFileSync(path.join(dir, 'loras', RUN, 'training_log.json'), 'utf8'));
  assert.match(log.stop_reason, /reached stop_at_loss 900/);
  assert.ok(fs.existsSync(path.join(dir, 'loras', RUN, 'adapter_model.safetensors')));
  assert.ok(await page.locator('#save-now').isDisabled());
  assert.ok(await page.locator('#start').isEnabled());  // the job ended: Start is back
  assert.ok(await page.locator('#ppl-run').isEnabled());
  assert.equal(await page.title(), `finished · ${RUN} · tpro`);
  await shot('07-stopped-by-loss');
});

test('a reopened page says that Start would continue the existing adapter', async () => {
  await page.close();
  await openPage();
  assert.equal(await page.locator('#f-lora_name').inputValue(), RUN);  // the last job's name, pre-filled
  const note = page.locator('#start-note');
  assert.equal(await note.getAttribute('data-kind'), 'continue');
  assert.match(await note.textContent(), new RegExp(`^Start continues the existing adapter '${RUN}' \\(its weights, a fresh optimizer\\)\\.`));
  await shot('07c-start-continues');
  await setField('always_override', true);
  assert.equal(await note.getAttribute('data-kind'), 'replace');
  await setField('always_override', false);
  await page.click('#start-fresh');
  assert.equal(await page.locator('#f-lora_name').inputValue(), `${RUN}-2`);
  assert.equal(await note.textContent(), `Start creates a new adapter '${RUN}-2'.`);
});

test('a failed resume shows its error as a banner, not on a field', async () => {
  // Another cutoff_len slices another number of blocks: the checkpoint's batch order does not
  // fit. Its hint mentions "dataset", the (empty) JSON dataset field: the form must stay put.
  await setField('lora_name', RUN);
  await setField('resume_from_checkpoint', 'latest');
  await setField('cutoff_len', '32');
  await page.click('#start');
  await page.waitForSelector('#status[data-state="failed"]', WAIT);
  await page.waitForSelector('#form-error:not([hidden])', WAIT);
  assert.match(await page.locator('#form-error').textContent(), /^batcher state was saved with rows = \d+ but this run has \d+/);
  assert.equal(await page.locator('.field.invalid').count(), 0);
  assert.ok(await page.locator('#tab-raw_text').evaluate(b => b.classList.contains('active')), 'the dataset tab changed');
  assert.ok(await page.locator('#start').isEnabled());
  await shot('07b-resume-failed');
  await setField('resume_from_checkpoint', '');
  await setField('cutoff_len', '64');
});

test('the run is listed among past runs with its chart, opened by keyboard', async () => {
  await page.click('nav .tab[data-tab="runs"]');
  const row = page.locator(`#runs-table tr[data-run="${RUN}"]`);
  await row.waitFor(WAIT);
  assert.match(await row.textContent(), /reached stop_at_loss 900/);
  // Tab from the "Past runs" tab reaches the run's button (a few stops at most); Enter opens it.
  await page.focus('nav .tab[data-tab="runs"]');
  let reached = false;
  for (let i = 0; i < 5 && !reached; ++i) {
    await page.keyboard.press('Tab');
    reached = await page.evaluate(n => document.activeElement?.closest('tr')?.dataset.run === n, RUN);
  }
  assert.ok(reached, 'Tab did not reach the past run');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => Number(document.getElementById('run-chart').dataset.points) > 0, null, WAIT);
  const graph = await api(`/api/runs/${RUN}/graph`);
  assert.equal(await chartPoints('#run-chart'), graph.records.length);
  await shot('08-past-runs');
  // "Copy its parameters" fills the Train form from the run's training_parameters.json.
  await page.click('nav .tab[data-tab="train"]');
  await setField('lora_rank', '64');
  await setField('lora_name', 'next-run');
  await page.click('nav .tab[data-tab="runs"]');
  await page.click('#run-copy');
  await page.waitForSelector('#tab-train.active', WAIT);
  assert.equal(await page.locator('#f-lora_rank').inputValue(), '4');
  assert.equal(await page.locator('#f-cutoff_len').inputValue(), '64');
  assert.equal(await page.locator('#f-raw_text_file').inputValue(), 'sample.txt');
  assert.equal(await page.locator('#f-lora_name').inputValue(), 'next-run');  // the new run keeps its own name
  assert.match(await page.locator('#copy-note').textContent(), new RegExp(`^copied from ${RUN}`));
});

test('the perplexity tab evaluates and adds a row to the results', async () => {
  await page.click('nav .tab[data-tab="perplexity"]');
  await page.selectOption('#ppl-model', 'tiny');
  await page.selectOption('#ppl-lora', RUN);
  await page.fill('#ppl-text', 'short.txt');
  await page.fill('#ppl-stride', '0');
  await page.fill('#ppl-max-length', '32');
  await page.click('#ppl-run');
  await page.waitForFunction(() => document.getElementById('ppl-err-stride').textContent !== '', null, WAIT);
  assert.equal(await page.locator('#ppl-err-stride').textContent(), 'stride must be in [1, 32], got 0');
  await page.fill('#ppl-stride', '16');
  await page.fill('#ppl-comment', 'browser test');
  await page.click('#ppl-run');
  const row = page.locator('#ppl-table tbody tr');
  await row.first().waitFor(WAIT);
  const cells = await row.first().locator('td').allTextContents();
  assert.deepEqual([cells[0], cells[1], cells[2], cells[4], cells[5], cells[6], cells[8]],
                   ['tiny', RUN, 'short.txt', '16', '32', '75', 'browser test']);  // 74 bytes + BOS
  assert.ok(Number(cells[3]) > 1, `perplexity ${cells[3]}`);
  assert.equal(await page.locator('#ppl-err-stride').textContent(), '');
  await shot('09-perplexity');
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
