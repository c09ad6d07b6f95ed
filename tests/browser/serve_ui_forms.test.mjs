// The web UI of `tpro serve` without a training job, in a real browser (as serve_ui.test.mjs):
// the page fits phone, tablet and desktop widths (one column below 900 px; screenshots of each
// tab at each width go to $TPRO_ARTIFACTS); the connection indicator is styled apart from the
// run panel; a GGUF base model is offered and accepted; "Copy parameters from" a Training PRO
// run turns its extensionless data names into the files in the data folder, and shows an object
// parameter (chat_template_kwargs) as JSON text.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadPlaywright, makeFixture, startServer, stopServer, launchBrowser, artifactsDir } from './harness.mjs';

const WAIT = { timeout: 60000 };
let dir, server, browser, page;
const pageErrors = [];
const shots = artifactsDir();

// Two Training PRO runs as its training_parameters.json writes them: data names without
// extensions, "None" for an empty choice; their data sits in the data folder.
function addTrainingProRuns(root) {
  const write = (rel, text) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  };
  const common = { lora_rank: 8, lora_alpha: 16, cutoff_len: 64, report_to: 'None', higher_rank_limit: false,
                   datasetJSONL: 'None', eval_datasetJSONL: 'None', eval_dataset: 'None' };
  write('loras/tp-text/adapter_config.json', '{}');
  write('loras/tp-text/training_parameters.json',
        JSON.stringify({ ...common, lora_name: 'tp-text', raw_text_file: 'long', dataset: 'None', format: 'None' }));
  write('loras/tp-json/adapter_config.json', '{}');
  write('loras/tp-json/training_parameters.json',
        JSON.stringify({ ...common, lora_name: 'tp-json', raw_text_file: 'None', dataset: 'qa', format: 'qa-format',
                        chat_template_kwargs: { enable_thinking: false } }));
  write('data/long.txt', 'A long story about a lighthouse and its keeper.\n'.repeat(40));
  write('data/qa.json', JSON.stringify(Array.from({ length: 8 }, (_, i) =>
    ({ instruction: `What is ${i} plus ${i}?`, output: `It is ${2 * i}.` }))));
  write('data/formats/qa-format.json', JSON.stringify({ 'instruction,output': 'User: %instruction%\nAssistant: %output%' }));
}

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
  await input.fill(String(value));
}

// Runs the dataset check; its report, or a failure with the error the form shows.
async function checkReport() {
  await page.click('#check');
  await page.waitForFunction(() => /^Training blocks: \d+\n/.test(document.getElementById('check-report').textContent)
                                   || !document.getElementById('form-error').hidden
                                   || document.querySelector('.field.invalid'), null, WAIT);
  const errors = await page.locator('#form-error, .field.invalid .field-error').allTextContents();
  assert.deepEqual(errors.filter(e => e), []);
  return page.locator('#check-report').textContent();
}

const activeSubtab = () => page.locator('.subtabs button.active').getAttribute('id');

before(async () => {
  const { chromium } = loadPlaywright();
  dir = makeFixture();
  addTrainingProRuns(dir);
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

test('the page fits phone, tablet and desktop widths', async () => {
  for (const [width, height] of [[390, 844], [768, 1024], [1440, 900]]) {
    await page.setViewportSize({ width, height });
    for (const tab of ['train', 'perplexity', 'runs']) {
      await page.click(`nav .tab[data-tab="${tab}"]`);
      const w = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth,
                                              view: window.innerWidth }));
      assert.equal(w.view, width);
      assert.ok(w.doc <= width && w.body <= width, `${tab} tab at ${width} px is ${w.doc} px wide`);
      await page.screenshot({ path: path.join(shots, `layout-${width}-${tab}.png`), fullPage: true });
    }
    await page.click('nav .tab[data-tab="train"]');
    const panel = await page.locator('.run-panel').boundingBox(), form = await page.locator('#train-form').boundingBox();
    if (width < 900) assert.ok(form.y >= panel.y + panel.height, `at ${width} px the form is not below the run panel`);
    else assert.equal(form.y, panel.y, `at ${width} px the run panel and the form are not side by side`);
  }
  await page.setViewportSize({ width: 1400, height: 1000 });
});

test('the connection indicator has its own class, not the run panel\'s', async () => {
  await page.waitForSelector('#conn.online', WAIT);
  assert.equal(await page.locator('#conn').textContent(), 'live');
  assert.equal(await page.locator('#conn').getAttribute('class'), 'conn online');
  assert.equal(await page.locator('#conn').evaluate(e => getComputedStyle(e).position), 'static');
  assert.equal(await page.locator('.run-panel').evaluate(e => getComputedStyle(e).position), 'sticky');
});

test('a GGUF base model is offered and accepted', async () => {
  assert.equal(await page.locator('#dl-models option[value="tiny.gguf"]').count(), 1);
  assert.equal(await page.locator('#ppl-model option[value="tiny.gguf"]').count(), 1);
  await setField('model', 'tiny.gguf');
  await setField('raw_text_file', 'sample.txt');
  await setField('cutoff_len', '64');
  assert.match(await checkReport(), /^Training blocks: \d+\n/);
  await page.screenshot({ path: path.join(shots, 'forms-gguf-check.png'), fullPage: true });
});

test('Copy parameters from a Training PRO run finds its data files', async () => {
  await page.selectOption('#copy-from', 'tp-text');
  await page.click('#copy-apply');
  await page.waitForFunction(() => document.getElementById('copy-note').textContent.startsWith('copied from tp-text'),
                             null, WAIT);
  assert.equal(await page.locator('#f-raw_text_file').inputValue(), 'long.txt');
  assert.equal(await page.locator('#f-lora_rank').inputValue(), '8');
  assert.equal(await activeSubtab(), 'tab-raw_text');
  assert.match(await checkReport(), /^Training blocks: \d+\n/);

  await page.selectOption('#copy-from', 'tp-json');
  await page.click('#copy-apply');
  await page.waitForFunction(() => document.getElementById('copy-note').textContent.startsWith('copied from tp-json'),
                             null, WAIT);
  assert.equal(await page.locator('#f-dataset').inputValue(), 'qa.json');
  assert.equal(await page.locator('#f-format').inputValue(), 'formats/qa-format.json');
  assert.equal(await page.locator('#f-raw_text_file').inputValue(), '');
  assert.equal(await page.locator('#f-eval_dataset').inputValue(), '');
  assert.equal(await activeSubtab(), 'tab-json');
  assert.match(await checkReport(), /^Training blocks: 8\n/);
  // An object parameter shows as JSON text and goes back as that text for the server to parse
  // (sent in the JSONL chat mode, whose field it is: the form sends only the chosen mode's fields).
  assert.equal(await page.locator('#f-chat_template_kwargs').inputValue(), '{"enable_thinking":false}');
  assert.deepEqual(await page.evaluate(() => ui.form.values().chat_template_kwargs), {});
  assert.equal(await page.evaluate(() => { ui.form.setMode('jsonl', false); const v = ui.form.values().chat_template_kwargs;
                                           ui.form.setMode('json', false); return v; }), '{"enable_thinking":false}');
  await page.screenshot({ path: path.join(shots, 'forms-copied-training-pro.png'), fullPage: true });
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
