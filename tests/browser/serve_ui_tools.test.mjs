// The web UI's tools around a run, in a real browser (as serve_ui.test.mjs): the memory
// estimate next to Start (refreshed as fields change; gradient checkpointing switched on when
// only that fits; a refusal that disables Start until "ignore memory check" is ticked); the
// improved chart of a past run (epoch or step on x, round ticks, axis titles, a tooltip,
// smoothing, a log loss axis, grad norm on the right axis, colours with 3:1 contrast,
// checkpoints and a logged batch-order event marked); and exports of that run (a zip to
// download, replacing an existing one only after confirming; a merged GGUF in the models
// folder). Screenshots go to $TPRO_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadPlaywright, makeFixture, startServer, stopServer, launchBrowser, artifactsDir } from './harness.mjs';

const WAIT = { timeout: 60000 };
const RUN = 'tools-run';
let dir, server, browser, page;
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
  for (let i = 0; i < 50; i++) {  // the page's own plan may hold the server's one slot (429)
    const r = await fetch(new URL(p, server.url), { method: 'POST', headers: { 'Content-Type': 'application/json' },
                                                    body: JSON.stringify(body) });
    if (r.status !== 429) return { status: r.status, body: await r.json() };
    await new Promise(res => setTimeout(res, 300));
  }
  throw new Error(`${p} stayed busy`);
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

const planState = () => page.locator('#memory-plan').getAttribute('data-state');
async function waitPlan(state) {
  const ok = await page.waitForFunction(s => document.getElementById('memory-plan').dataset.state === s, state, WAIT)
    .then(() => true, () => false);
  const text = await page.locator('#memory-text').textContent();
  assert.ok(ok, `the memory plan is ${await planState()}, not ${state}: ${text}`);
  return text;
}

// WCAG relative luminance and contrast of two #rrggbb colours.
function contrast(a, b) {
  const lum = hex => {
    const c = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map(v => (v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4)));
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p);
  return (x + 0.05) / (y + 0.05);
}

// A tick list is round: every tick a multiple of a step of 1, 2 or 5 × 10^k.
function assertRound(ticks, step, what) {
  assert.ok(ticks.length >= 2, `${what}: ${ticks}`);
  const mant = step / Math.pow(10, Math.floor(Math.log10(step) + 1e-9));
  assert.ok([1, 2, 5].some(m => Math.abs(mant - m) < 1e-6), `${what}: step ${step}`);
  for (const t of ticks) assert.ok(Math.abs(t / step - Math.round(t / step)) < 1e-6, `${what}: tick ${t} of step ${step}`);
}

before(async () => {
  const { chromium } = loadPlaywright();
  dir = makeFixture();
  server = await startServer(dir);
  // A short finished run with checkpoints at steps 2, 4, 6; its log gets a batch-order event.
  const run = { model: 'tiny', lora_name: RUN, raw_text_file: 'sample.txt', cutoff_len: 64, micro_batch_size: 2,
                max_steps: 6, save_steps: 2, threads: 1, eval_steps: 0, warmup_steps: 0, learning_rate: 1e-3,
                lora_rank: 4, lora_alpha: 8, save_steps_under_loss: 0 };
  const r = await post('/api/train', run);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((await waitJobDone()).state, 'finished');
  const logFile = path.join(dir, 'loras', RUN, 'training_log.json');
  const log = JSON.parse(fs.readFileSync(logFile, 'utf8'));
  log.events = (log.events || []).concat([{ step: 3, kind: 'batch_order', message: 'batch order: sequential from epoch 0' }]);
  fs.writeFileSync(logFile, JSON.stringify(log));
  browser = await launchBrowser(chromium);
  await openPage();
});

after(async () => {
  if (browser) await browser.context.close();
  await stopServer(server);
  if (browser) fs.rmSync(browser.profile, { recursive: true, force: true });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the memory estimate next to Start follows the form', async () => {
  await setField('lora_name', 'plan-run');
  await setField('model', 'tiny');
  await setField('raw_text_file', 'sample.txt');
  await setField('cutoff_len', '64');
  await setField('use_grad_checkpoint', false);
  const text = await waitPlan('fits');
  assert.match(text, /^Memory: weights [\d.]+ [KMG]iB \+ adapter [\d.]+ [KMG]iB \+ activations [\d.]+ [KMG]iB \+ workspace [\d.]+ [KMG]iB = [\d.]+ [KMG]iB of [\d.]+ [KMG]iB available$/);
  assert.ok(await page.locator('#start').isEnabled());
  await shot('tools-01-memory-fits');

  // A budget between the plan with and without recomputation: checkpointing is switched on.
  await setField('micro_batch_size', '4');
  const base = await page.evaluate(() => ui.form.values());  // the plan of what the form holds
  const off = (await post('/api/plan', { ...base, use_grad_checkpoint: false })).body;
  const on = (await post('/api/plan', { ...base, use_grad_checkpoint: true })).body;
  assert.ok(on.total < off.total, `recomputation saves nothing: ${on.total} vs ${off.total}`);
  await setField('memory_limit_gib', String((on.total + off.total) / 2 / 2 ** 30));
  const adjusted = await waitPlan('adjusted');
  assert.match(adjusted, /^Memory: .* available; gradient checkpointing will be switched on$/);
  assert.ok(await page.locator('#start').isEnabled());

  // A budget nothing fits: Start is disabled and says why, until "ignore memory check".
  await setField('memory_limit_gib', '0.000001');
  const refused = await waitPlan('refused');
  assert.match(refused, /Start is disabled: the run does not fit and would be refused\. .*--ignore-memory-check/);
  assert.ok(await page.locator('#start').isDisabled());
  assert.match(await page.locator('#start').getAttribute('title'), /does not fit/);
  assert.ok(await page.locator('#memory-ignore').isVisible());
  await shot('tools-02-memory-refused');
  await page.locator('#memory-ignore').check();
  assert.match(await waitPlan('ignored'), /it does not fit: starting anyway \(ignore memory check\)$/);
  assert.ok(await page.locator('#f-ignore_memory_check').isChecked());
  assert.ok(await page.locator('#start').isEnabled());
  await page.locator('#memory-ignore').uncheck();
  await waitPlan('refused');
  await setField('memory_limit_gib', '0');
  await waitPlan('fits');
  assert.ok(await page.locator('#start').isEnabled());
});

test('a past run\'s chart: epoch axis, round ticks, titles, tooltip, toggles, marks', async () => {
  await page.click('nav .tab[data-tab="runs"]');
  await page.click(`#runs-table tr[data-run="${RUN}"] button.run-open`);
  await page.waitForFunction(() => Number(document.getElementById('run-chart').dataset.points) > 0, null, WAIT);
  const c = page.locator('#run-chart');
  const data = () => c.evaluate(e => ({ ...e.dataset }));
  let d = await data();
  assert.equal(d.x, 'epoch');
  assert.deepEqual(JSON.parse(d.titles), { x: 'epoch', left: 'loss (nats per token)', right: 'learning rate' });
  let ticks = JSON.parse(d.ticks);
  assertRound(ticks.x, ticks.xstep, 'x');
  assertRound(ticks.y, ticks.ystep, 'loss');
  assertRound(ticks.y2, ticks.y2step, 'learning rate');
  const graph = await getJson(`/api/runs/${RUN}/graph`);
  assert.deepEqual(graph.checkpoints.map(k => k.step), [2, 4, 6]);
  assert.equal(Number(d.marks), 4, 'three checkpoints and the batch-order event');

  // Hovering shows the nearest record's values.
  const box = await c.boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.waitForSelector('#run-chart-tip:not([hidden])', WAIT);
  assert.match(await page.locator('#run-chart-tip').textContent(), /^step \d+ · epoch [\d.]+\nloss \d+\.\d{4}\n/);
  await shot('tools-03-chart-tooltip');
  await page.mouse.move(0, 0);

  await page.selectOption('#run-chart-x', 'step');
  await page.selectOption('#run-chart-right', 'grad_norm');
  await page.check('#run-chart-smooth');
  await page.check('#run-chart-log');
  await page.waitForFunction(() => document.getElementById('run-chart').dataset.log === 'true', null, WAIT);
  d = await data();
  assert.equal(d.x, 'step');
  assert.equal(d.smooth, '0.6');
  assert.deepEqual(JSON.parse(d.titles), { x: 'optimizer step', left: 'loss (nats per token, log scale)',
                                           right: 'grad norm (before clipping)' });
  ticks = JSON.parse(d.ticks);
  assertRound(ticks.x, ticks.xstep, 'step');
  for (const t of ticks.y) {  // log ticks: 1, 2 or 5 × 10^k each
    const m = t / Math.pow(10, Math.floor(Math.log10(t) + 1e-9));
    assert.ok([1, 2, 5].some(x => Math.abs(m - x) < 1e-6), `log tick ${t}`);
  }
  assert.equal(Number(d.marks), 4);
  await page.selectOption('#run-chart-right', 'tokens_per_s');
  await page.waitForFunction(() => document.getElementById('run-chart').dataset.right === 'tokens_per_s', null, WAIT);
  await shot('tools-04-chart-step-log-smooth');

  const colors = await page.evaluate(() => ({ bg: CHART_BG, colors: CHART_COLORS }));
  for (const [name, color] of Object.entries(colors.colors))
    assert.ok(contrast(color, colors.bg) >= 3, `${name} ${color}: contrast ${contrast(color, colors.bg).toFixed(2)}`);
});

test('exporting the run: a zip to download, replaced only after confirming; a merged GGUF', async () => {
  assert.equal(await page.locator('#ex-lora').inputValue(), RUN);  // the run shown above
  await page.waitForFunction(() => document.getElementById('ex-model').value === 'tiny', null, WAIT);
  await page.selectOption('#ex-kind', 'zip');
  assert.equal(await page.locator('#ex-out').getAttribute('placeholder'), `${RUN}.zip`);
  assert.ok(await page.locator('#ex-model').isHidden());
  await page.check('#ex-checkpoints');
  await page.click('#ex-run');
  await page.waitForSelector('#ex-download', WAIT);
  assert.equal(await page.locator('#ex-status').getAttribute('data-state'), 'finished');
  assert.equal(await page.locator('#ex-status').textContent(), `exported ${RUN} to ${RUN}.zip`);
  assert.equal(await page.locator('#ex-progress').evaluate(p => p.value === p.max), true);
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#ex-download')]);
  assert.equal(download.suggestedFilename(), `${RUN}.zip`);
  const got = fs.readFileSync(await download.path());
  assert.deepEqual(got, fs.readFileSync(path.join(dir, 'loras', `${RUN}.zip`)));
  assert.equal(got.readUInt32LE(0), 0x04034b50, 'a zip local header');
  await shot('tools-05-export-zip');

  // Again: the zip exists, so the page asks; "Replace it" writes it anew.
  const before = fs.statSync(path.join(dir, 'loras', `${RUN}.zip`)).mtimeMs;
  await page.click('#ex-run');
  await page.waitForSelector('#ex-exists:not([hidden])', WAIT);
  assert.equal(await page.locator('#ex-exists-text').textContent(),
               `out: '${RUN}.zip' already exists in the loras folder (hint: confirm to replace it, or choose another name) `);
  await shot('tools-06-export-exists');
  await new Promise(res => setTimeout(res, 20));
  await page.click('#ex-replace');
  await page.waitForSelector('#ex-download', WAIT);
  assert.ok(await page.locator('#ex-exists').isHidden());
  assert.ok(fs.statSync(path.join(dir, 'loras', `${RUN}.zip`)).mtimeMs > before, 'the zip was not rewritten');

  // A bad output name shows next to its field.
  await page.selectOption('#ex-kind', 'merge_gguf');
  await page.fill('#ex-out', 'merged.bin');
  await page.click('#ex-run');
  await page.waitForFunction(() => document.getElementById('ex-err-out').textContent !== '', null, WAIT);
  assert.match(await page.locator('#ex-err-out').textContent(), /^out: 'merged.bin' must end in \.gguf/);
  await page.fill('#ex-out', '');
  await page.selectOption('#ex-dtype', 'q8_0');
  await page.click('#ex-run');
  await page.waitForFunction(n => document.getElementById('ex-result').textContent.endsWith(n), `${RUN}-merged.gguf`, WAIT);
  assert.equal(await page.locator('#ex-result').textContent(), `written to the models folder: ${RUN}-merged.gguf`);
  assert.equal(await page.locator('#ex-status').getAttribute('data-state'), 'finished');
  assert.ok(fs.existsSync(path.join(dir, 'models', `${RUN}-merged.gguf`)));
  await page.waitForFunction(n => [...document.getElementById('ppl-model').options].some(o => o.value === n),
                             `${RUN}-merged.gguf`, WAIT);  // the merged model is a base model now
  await shot('tools-07-export-merged');
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
