// The Playground tab in a real browser (as serve_ui.test.mjs): after a short training run the
// tab offers that adapter and its base; a chat with a built-in template streams the base and the
// adapter side by side (text shows while the generation still runs, over several reads); Stop
// ends a long completion; bad values and a missing chat template are shown at their fields; a
// running job disables Generate and says why; every control is labelled; no script errors.
// The server pauses 15 ms after each round of tokens (TPRO_PLAYGROUND_DELAY_MS) so that a
// generation lasts long enough to watch and stop. Screenshots go to $TPRO_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadPlaywright, makeFixture, startServer, stopServer, launchBrowser, artifactsDir } from './harness.mjs';

const WAIT = { timeout: 60000 };
const RUN = 'pg-run';
let dir, server, browser, page;
const pageErrors = [];
const shots = artifactsDir();

const shot = name => page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });

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

const state = () => page.locator('#pg-status').getAttribute('data-state');
async function waitState(want) {
  const ok = await page.waitForFunction(s => document.getElementById('pg-status').dataset.state === s, want, WAIT)
    .then(() => true, () => false);
  assert.ok(ok, `the playground is ${await state()}, not ${want}: ${await page.locator('#pg-status').textContent()}`);
}

before(async () => {
  const { chromium } = loadPlaywright();
  dir = makeFixture();
  process.env.TPRO_PLAYGROUND_DELAY_MS = '15';
  server = await startServer(dir);
  const run = { model: 'tiny', lora_name: RUN, raw_text_file: 'sample.txt', cutoff_len: 64, micro_batch_size: 2,
                max_steps: 4, threads: 1, eval_steps: 0, warmup_steps: 0, learning_rate: 1e-2,
                lora_rank: 4, lora_alpha: 8, save_steps_under_loss: 0 };
  const r = await post('/api/train', run);
  assert.equal(r.status, 202, JSON.stringify(r.body));
  assert.equal((await waitJobDone()).state, 'finished');
  browser = await launchBrowser(chromium);
  page = await browser.context.newPage();
  page.on('pageerror', e => pageErrors.push(e.message));
  page.on('console', m => {
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of (400|409) /.test(m.text()))
      pageErrors.push(m.text());
  });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready="true"]', WAIT);
  await page.click('nav .tab[data-tab="playground"]');
});

after(async () => {
  if (browser) await browser.context.close();
  await stopServer(server);
  if (browser) fs.rmSync(browser.profile, { recursive: true, force: true });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the tab is a selected tab, offers the run just trained and labels every control', async () => {
  const tab = page.locator('#tabbtn-playground');
  assert.equal(await tab.getAttribute('role'), 'tab');
  assert.equal(await tab.getAttribute('aria-selected'), 'true');
  assert.equal(await page.locator('nav .tab[data-tab="train"]').getAttribute('aria-selected'), 'false');
  assert.ok(await page.locator('#tab-playground').isVisible());
  await page.waitForFunction(() => document.getElementById('pg-lora').value === 'pg-run', null, WAIT);
  assert.equal(await page.locator('#pg-model').inputValue(), 'tiny');
  assert.equal(await page.locator('#pg-output').getAttribute('aria-live'), 'polite');
  assert.match(await page.locator('#pg-loaded').textContent(), /^No model loaded/);
  const unlabelled = await page.evaluate(() => [...document.querySelectorAll('#pg-form input, #pg-form select, #pg-form textarea')]
    .filter(e => !(e.labels && e.labels.length)).map(e => e.id));
  assert.deepEqual(unlabelled, []);
  const templates = await page.locator('#pg-template option').evaluateAll(os => os.map(o => o.value));
  assert.deepEqual(templates.slice(0, 2), ['', 'chatml']);
});

test('a chat without a chat template says so at the template field', async () => {
  await page.fill('#pg-message', 'Who keeps the light?');
  await page.selectOption('#pg-template', '');
  await page.click('#pg-run');
  await waitState('error');
  assert.match(await page.locator('#pg-err-chat_template').textContent(), /the model 'tiny' has no chat template \(hint: choose a built-in one/);
});

test('side by side streams the base and the adapter as the tokens come', async () => {
  await page.selectOption('#pg-template', 'chatml');
  await page.fill('#pg-system', 'Answer briefly.');
  await page.fill('#pg-message', 'Who keeps the light?');
  await page.check('#pg-side');
  await page.fill('#pg-max-tokens', '60');
  await page.fill('#pg-temperature', '0.8');
  await page.fill('#pg-seed', '7');
  await page.click('#pg-run');
  // Text is on the page in both columns while the generation still runs.
  const streamed = await page.waitForFunction(() => {
    const st = document.getElementById('pg-status').dataset.state;
    const base = document.getElementById('pg-out-base'), ad = document.getElementById('pg-out-adapter');
    return st === 'generating' && base && ad && Number(base.dataset.tokens) > 0 && Number(ad.dataset.tokens) > 0 &&
      Number(base.dataset.tokens) < 60;
  }, null, WAIT).then(() => true, () => false);
  assert.ok(streamed, 'no partial text was shown while generating');
  assert.equal(await page.locator('#pg-output').getAttribute('aria-busy'), 'true');
  await waitState('finished');
  assert.equal(await page.locator('#pg-output').getAttribute('data-columns'), '2');
  assert.ok(Number(await page.locator('#pg-output').getAttribute('data-chunks')) > 1, 'the tokens came in one read');
  for (const col of ['base', 'adapter']) {
    assert.equal(await page.locator(`#pg-out-${col}`).getAttribute('data-tokens'), '60');
    assert.match(await page.locator(`#pg-done-${col}`).textContent(), /^60 tokens: reached max new tokens/);
  }
  assert.match(await page.locator('#pg-seed-used').textContent(), /^seed 7 · prompt \d+ tokens/);
  // The chat goes on with the adapter's answer; the model stays loaded.
  assert.equal(await page.locator('#pg-chat li').count(), 2);
  assert.equal(await page.locator('#pg-chat li').nth(1).locator('span').nth(1).textContent(),
               await page.locator('#pg-out-adapter').textContent());
  assert.equal(await page.locator('#pg-message').inputValue(), '');
  await page.waitForFunction(() => document.getElementById('pg-loaded').dataset.loaded === 'true', null, WAIT);
  assert.match(await page.locator('#pg-loaded').textContent(), /^Loaded: tiny \+ pg-run \(weights /);
  await shot('playground-side-by-side');
});

test('Stop ends a long completion', async () => {
  await page.check('#pg-mode-completion');
  assert.ok(await page.locator('#pg-prompt').isVisible());
  assert.ok(!(await page.locator('#pg-message').isVisible()));
  await page.uncheck('#pg-side');
  await page.fill('#pg-prompt', 'The lighthouse keeper climbed');
  await page.fill('#pg-max-tokens', '4096');
  await page.click('#pg-run');
  await page.waitForFunction(() => Number(document.getElementById('pg-out-adapter')?.dataset.tokens) >= 5, null, WAIT);
  assert.match(await page.locator('#pg-notes').textContent(), /max_new_tokens lowered from 4096 to \d+/);
  await page.click('#pg-stop');
  await waitState('stopped');
  const tokens = Number(await page.locator('#pg-out-adapter').getAttribute('data-tokens'));
  assert.ok(tokens >= 5 && tokens < 200, `${tokens} tokens`);
  assert.equal(await page.locator('#pg-out-adapter').getAttribute('data-done'), '');
  assert.equal(await page.locator('#pg-run').isDisabled(), false);
  assert.equal((await getJson('/api/playground')).last.reason, 'stopped');
  await shot('playground-stopped');
});

test('a value out of range is shown at its field', async () => {
  await page.fill('#pg-temperature', '9');
  await page.click('#pg-run');
  await waitState('error');
  assert.match(await page.locator('#pg-err-temperature').textContent(), /temperature must be in \[0, 5\], got 9/);
  await page.fill('#pg-temperature', '0.7');
});

test('a running job disables Generate and says why', async () => {
  const r = await post('/api/train', { model: 'tiny', lora_name: 'pg-endless', raw_text_file: 'sample.txt', cutoff_len: 64,
                                       micro_batch_size: 2, max_steps: 1000000, threads: 1, eval_steps: 0,
                                       warmup_steps: 0, save_steps_under_loss: 0, lora_rank: 4, lora_alpha: 8 });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  await page.waitForFunction(() => !document.getElementById('pg-job-note').hidden, null, WAIT);
  assert.match(await page.locator('#pg-job-note').textContent(), /^A training job is running: the playground waits until it ends/);
  assert.equal(await page.locator('#pg-run').isDisabled(), true);
  // The job took the memory: the page shows that the model was unloaded.
  await page.waitForFunction(() => document.getElementById('pg-loaded').dataset.loaded === 'false', null, WAIT);
  assert.match(await page.locator('#pg-loaded').textContent(), /^No model loaded/);
  await shot('playground-job-running');
  assert.equal((await post('/api/stop', {})).status, 200);
  await waitJobDone();
  await page.waitForFunction(() => document.getElementById('pg-job-note').hidden, null, WAIT);
  assert.equal(await page.locator('#pg-run').isDisabled(), false);
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
