// The training form's words and controls in a real browser (issue 18 item 10): plain labels
// with the identifier in small type and the help tied to each input; Advanced closed until
// opened; sliders whose value is what the form submits; refresh buttons that pick up files added
// after the page loaded; the dataset source as a radio group whose mode decides which fields show
// and which are sent (each mode's request passes the dataset check); a Training PRO hybrid run
// copied in picks its mode; errors still land next to their field. Screenshots at 390, 768 and
// 1440 px go to $TPRO_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadPlaywright, makeFixture, startServer, stopServer, launchBrowser, artifactsDir } from './harness.mjs';

const WAIT = { timeout: 60000 };
let dir, server, browser, page, schema;
const pageErrors = [];
const shots = artifactsDir();

function write(rel, text) {
  fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  fs.writeFileSync(path.join(dir, rel), text);
}

// A JSON dataset with its format, a JSONL chat dataset, and a hybrid run to copy from.
function addData() {
  write('data/qa.json', JSON.stringify(Array.from({ length: 8 }, (_, i) =>
    ({ instruction: `What is ${i} plus ${i}?`, output: `It is ${2 * i}.` }))));
  write('data/formats/qa-format.json', JSON.stringify({ 'instruction,output': 'User: %instruction%\nAssistant: %output%' }));
  write('data/chat.jsonl', Array.from({ length: 8 }, (_, i) => JSON.stringify({ messages: [
    { role: 'user', content: `Say ${i}.` }, { role: 'assistant', content: `${i}, as asked.` }] })).join('\n') + '\n');
  write('loras/hybrid-run/adapter_config.json', '{}');
  write('loras/hybrid-run/training_parameters.json', JSON.stringify({
    lora_name: 'hybrid-run', hybrid_training: true, raw_text_file: 'sample.txt', jsonl_dataset: 'chat.jsonl',
    dataset: '', hybrid_data_ratio: 40, chat_template_file: 'chatml' }));
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

const visible = sel => page.locator(sel).isVisible();
const openAdvanced = async () => {
  if (!(await page.locator('#advanced').evaluate(d => d.open))) await page.click('#advanced > summary');
};

// Does what act does and returns the JSON body of the next request it sends to route (with
// every key of want, when given: a request the page sent a moment before does not count).
async function bodyOf(route, act, want = {}) {
  const req = page.waitForRequest(r => r.method() === 'POST' && new URL(r.url()).pathname === route
    && Object.entries(want).every(([k, v]) => r.postDataJSON()[k] === v), WAIT);
  await act();
  return (await req).postDataJSON();
}

// Runs the dataset check: the body it sent, and the report (or a failure with the shown error).
async function check() {
  await page.evaluate(() => { document.getElementById('check-report').textContent = ''; });
  const body = await bodyOf('/api/check', () => page.click('#check'));
  await page.waitForFunction(() => /^Training blocks: \d+[\s(]/.test(document.getElementById('check-report').textContent)
                                   || !document.getElementById('form-error').hidden
                                   || document.querySelector('.field.invalid'), null, WAIT);
  const errors = await page.locator('#form-error, .field.invalid .field-error').allTextContents();
  assert.deepEqual(errors.filter(e => e), []);
  return { body, report: await page.locator('#check-report').textContent() };
}

before(async () => {
  const { chromium } = loadPlaywright();
  dir = makeFixture();
  addData();
  server = await startServer(dir);
  browser = await launchBrowser(chromium);
  schema = await (await fetch(new URL('/api/schema', server.url))).json();
  await openPage();
});

after(async () => {
  if (browser) await browser.context.close();
  await stopServer(server);
  if (browser) fs.rmSync(browser.profile, { recursive: true, force: true });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test('the essentials come first and Advanced is closed until opened', async () => {
  for (const name of ['model', 'lora_name', 'lora_rank', 'micro_batch_size', 'grad_accumulation', 'epochs',
                      'learning_rate', 'cutoff_len', 'raw_text_file', 'save_steps'])
    assert.ok(await visible(`#f-${name}`), `${name} is not shown at first`);
  assert.equal(await page.locator('#advanced').evaluate(d => d.open), false);
  const more = schema.fields.filter(f => !f.essential);
  assert.ok(more.length > 40);
  for (const f of more) assert.equal(await visible(`#f-${f.name}`), false, `${f.name} is shown before Advanced is opened`);
  const summary = page.locator('#advanced > summary');
  assert.equal(await summary.textContent(), `Advanced: ${more.length} more settings`);
  // Every essential field comes before Advanced in the page.
  const order = await page.evaluate(() => [...document.querySelectorAll('#form-groups .field')].map(
    b => ({ name: b.dataset.field, advanced: !!b.closest('#advanced') })));
  const firstAdvanced = order.findIndex(o => o.advanced);
  assert.ok(order.slice(0, firstAdvanced).every(o => schema.fields.find(f => f.name === o.name).essential));
  // Opened by keyboard (the summary is a tab stop), closed again the same way.
  await summary.focus();
  await page.keyboard.press('Enter');
  assert.equal(await page.locator('#advanced').evaluate(d => d.open), true);
  assert.ok(await visible('#f-adam_beta1'));
  assert.ok(await visible('#f-stop_at_loss'));
  await page.keyboard.press('Enter');
  assert.equal(await visible('#f-adam_beta1'), false);
  await summary.click();
  assert.ok(await visible('#f-adam_beta1'));
});

test('each field shows its plain label and its identifier, and its help describes the input', async () => {
  await openAdvanced();
  const words = { micro_batch_size: 'True batch size', grad_accumulation: 'Gradient accumulation',
                  precize_slicing_overlap: 'Add overlapping blocks', save_steps: 'Save every N steps',
                  cutoff_len: 'Maximum context length (cutoff)', save_steps_under_loss: 'Save at 10% loss change' };
  for (const [name, label] of Object.entries(words)) {
    const named = await page.getByLabel(label, { exact: true }).evaluateAll(es => es.map(e => e.id));
    assert.deepEqual(named.filter(id => !id.startsWith('s-')), [`f-${name}`]);  // and its slider, if any
    assert.equal(await page.locator(`.field[data-field="${name}"] code.ident`).textContent(), name);
  }
  for (const f of schema.fields) {
    const a = await page.locator(`#f-${f.name}`).evaluate(e => ({
      labels: [...e.labels].map(l => l.textContent), described: e.getAttribute('aria-describedby'),
      help: document.getElementById(`help-${e.name}`).textContent,
      ident: e.closest('.field').querySelector('code.ident'),
    }));
    assert.deepEqual(a.labels, [f.label], `${f.name}'s label`);
    assert.equal(a.described, `help-${f.name} err-${f.name}`);
    assert.equal(a.help, f.help);
  }
  assert.match(await page.locator('.field[data-field="micro_batch_size"] code.ident').getAttribute('title'),
               /--micro-batch-size/);
  // The sliders are named by the same label and described by the same help.
  for (const f of schema.fields.filter(x => x.slider)) {
    const s = page.locator(`#s-${f.name}`);
    assert.equal(await s.getAttribute('aria-labelledby'), `label-${f.name}`);
    assert.equal(await s.getAttribute('aria-describedby'), `help-${f.name}`);
    assert.deepEqual([await s.getAttribute('min'), await s.getAttribute('max'), await s.getAttribute('step')],
                     [f.slider.min, f.slider.max, f.slider.step].map(String));
  }
  assert.ok(await page.getByRole('slider', { name: 'True batch size' }).isVisible());
});

test('a slider changes the value the form submits, and the text box moves the slider', async () => {
  await page.fill('#f-model', 'tiny');
  await page.fill('#f-raw_text_file', 'sample.txt');
  await page.fill('#f-cutoff_len', '64');
  assert.equal(await page.locator('#s-cutoff_len').inputValue(), '64');  // the text box moved the slider
  assert.equal(await page.locator('#s-lora_rank').inputValue(), '32');   // the default
  await page.focus('#s-lora_rank');
  // The memory estimate follows the slider.
  const plan = await bodyOf('/api/plan', async () => {
    await page.keyboard.press('ArrowRight');
    await page.keyboard.press('ArrowRight');
  }, { lora_rank: 40 });
  assert.equal(plan.lora_rank, 40);
  assert.equal(await page.locator('#f-lora_rank').inputValue(), '40');
  await openAdvanced();
  await page.focus('#s-warmup_ratio');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.locator('#f-warmup_ratio').inputValue(), '0.025');
  await page.keyboard.press('End');
  assert.equal(await page.locator('#f-warmup_ratio').inputValue(), '0.2');
  const { body, report } = await check();
  assert.equal(body.lora_rank, 40);
  assert.equal(body.warmup_ratio, 0.2);
  assert.equal(body.cutoff_len, 64);
  assert.match(report, /^Training blocks: \d+[\s(]/);
  await page.fill('#f-warmup_ratio', '0');
  assert.equal(await page.locator('#s-warmup_ratio').inputValue(), '0');
});

test('the refresh buttons pick up models, data, formats and adapters added after the page loaded', async () => {
  const option = (list, value) => page.locator(`#${list} option[value="${value}"]`);
  assert.equal(await option('dl-models', 'tiny-copy').count(), 0);
  fs.cpSync(path.join(dir, 'models', 'tiny'), path.join(dir, 'models', 'tiny-copy'), { recursive: true });
  write('data/fresh.txt', 'A fresh text about the sea.\n'.repeat(20));
  write('data/more.json', '[]');
  write('data/formats/other-format.json', JSON.stringify({ 'instruction,output': '%instruction% -> %output%' }));
  write('loras/new-adapter/adapter_config.json', '{}');
  write('loras/new-adapter/training_parameters.json', '{"lora_rank": 8}');
  const refresh = name => page.locator(`.field[data-field="${name}"] button.refresh`);
  assert.equal(await refresh('model').getAttribute('aria-label'), 'Refresh the list of models');
  await refresh('model').click();
  await option('dl-models', 'tiny-copy').waitFor({ state: 'attached', ...WAIT });
  await page.waitForFunction(() => document.getElementById('refresh-status').textContent === 'The list of models is up to date.',
                             null, WAIT);
  write('data/later.txt', 'Written after the first refresh.\n'.repeat(20));
  await refresh('raw_text_file').click();
  await option('dl-text', 'later.txt').waitFor({ state: 'attached', ...WAIT });
  assert.equal(await option('dl-text', 'fresh.txt').count(), 1);
  // Formats and datasets are separate lists: format files are those under formats/.
  await page.click('#tab-json');
  assert.equal(await refresh('format').getAttribute('aria-label'), 'Refresh the list of format files');
  await refresh('format').click();
  await page.waitForFunction(() => document.getElementById('refresh-status').textContent.includes('format files'), null, WAIT);
  assert.equal(await option('dl-formats', 'formats/other-format.json').count(), 1);
  assert.equal(await option('dl-formats', 'more.json').count(), 0);
  assert.equal(await option('dl-json', 'more.json').count(), 1);
  assert.equal(await option('dl-json', 'formats/other-format.json').count(), 0);
  assert.equal(await page.locator('#f-format').getAttribute('list'), 'dl-formats');
  // "Copy parameters from" (adapters) has its own.
  assert.equal(await page.locator('#copy-from option[value="new-adapter"]').count(), 1);  // the refresh reloads all lists
  fs.rmSync(path.join(dir, 'loras', 'new-adapter'), { recursive: true });
  await page.click('#copy-refresh');
  await page.waitForFunction(() => !document.querySelector('#copy-from option[value="new-adapter"]'), null, WAIT);
  assert.equal(await page.locator('#copy-refresh').getAttribute('aria-label'), 'Refresh the list of past runs');
  await page.click('#tab-raw_text');
});

test('the dataset source is a radio group whose mode decides the fields shown and sent', async () => {
  const group = page.getByRole('radiogroup', { name: 'Dataset source' });
  const radios = group.getByRole('radio');
  assert.deepEqual(await radios.allTextContents(), ['Raw text', 'JSON + format', 'JSONL chat', 'Hybrid']);
  const state = () => radios.evaluateAll(bs => bs.map(b => `${b.id}:${b.getAttribute('aria-checked')}:${b.tabIndex}`));
  assert.deepEqual(await state(), ['tab-raw_text:true:0', 'tab-json:false:-1', 'tab-jsonl:false:-1', 'tab-hybrid:false:-1']);
  // Arrow keys move the choice and the focus; there is one tab stop.
  await page.focus('#tab-raw_text');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-json');
  assert.deepEqual(await state(), ['tab-raw_text:false:-1', 'tab-json:true:0', 'tab-jsonl:false:-1', 'tab-hybrid:false:-1']);
  await page.keyboard.press('ArrowLeft');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-raw_text');

  // Every kind's file is filled in; each mode shows and sends its own only.
  await page.fill('#f-raw_text_file', 'sample.txt');
  await page.click('#tab-json');
  await page.fill('#f-dataset', 'qa.json');
  await page.fill('#f-format', 'formats/qa-format.json');
  await page.click('#tab-jsonl');
  await page.fill('#f-jsonl_dataset', 'chat.jsonl');
  await page.fill('#f-chat_template_file', 'chatml');
  const shown = () => page.evaluate(() => ['raw_text_file', 'dataset', 'format', 'jsonl_dataset', 'hybrid_data_ratio']
    .filter(n => document.getElementById(`f-${n}`).checkVisibility()));
  const cases = [
    ['raw_text', null, ['raw_text_file'], { raw_text_file: 'sample.txt', dataset: '', jsonl_dataset: '', hybrid_training: false }],
    ['json', null, ['dataset', 'format'], { raw_text_file: '', dataset: 'qa.json', format: 'formats/qa-format.json', jsonl_dataset: '', hybrid_training: false }],
    ['jsonl', null, ['jsonl_dataset'], { raw_text_file: '', dataset: '', format: '', jsonl_dataset: 'chat.jsonl', chat_template_file: 'chatml', hybrid_training: false }],
    ['hybrid', 'json', ['raw_text_file', 'dataset', 'format', 'hybrid_data_ratio'], { raw_text_file: 'sample.txt', dataset: 'qa.json', jsonl_dataset: '', hybrid_training: true }],
    ['hybrid', 'jsonl', ['raw_text_file', 'jsonl_dataset', 'hybrid_data_ratio'], { raw_text_file: 'sample.txt', dataset: '', jsonl_dataset: 'chat.jsonl', hybrid_training: true }],
  ];
  for (const [mode, part, fields, sent] of cases) {
    // The memory estimate is asked again, for the chosen mode's data.
    await bodyOf('/api/plan', async () => {
      await page.click(`#tab-${mode}`);
      if (part) await page.click(`#hybrid-part-${part}`);
    }, sent);
    assert.deepEqual(await shown(), fields, `${mode} ${part || ''}`);
    assert.equal(await visible('#hybrid-part'), mode === 'hybrid');
    const { body, report } = await check();
    for (const [k, v] of Object.entries(sent)) assert.equal(body[k], v, `check ${mode} ${part || ''}: ${k}`);
    // Hybrid trains on both: the report counts each part.
    assert.match(report, mode === 'hybrid' ? /^Training blocks: \d+ \(raw text \d+, dataset \d+\)\n/ : /^Training blocks: \d+\n/,
                 `${mode} ${part || ''}`);
    await page.screenshot({ path: path.join(shots, `words-mode-${mode}${part ? '-' + part : ''}.png`), fullPage: true });
  }
  assert.deepEqual(await page.getByRole('radiogroup', { name: 'Instruction data to mix in' }).getByRole('radio').evaluateAll(
    bs => bs.map(b => b.getAttribute('aria-checked'))), ['false', 'true']);
});

test('an error is shown next to its field, in the chosen mode', async () => {
  // Hybrid without a text file: the mode switch's own field carries the error.
  await page.fill('#f-raw_text_file', '');
  await page.click('#check');
  await page.waitForFunction(() => document.getElementById('err-hybrid_training').textContent !== '', null, WAIT);
  assert.match(await page.locator('#err-hybrid_training').textContent(), /^hybrid_training needs raw_text_file and a dataset or jsonl_dataset/);
  assert.ok(await visible('#err-hybrid_training'));
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-hybrid');
  await page.fill('#f-raw_text_file', 'sample.txt');
  await page.fill('#f-lora_rank', '0');
  await page.click('#check');
  await page.waitForFunction(() => document.getElementById('err-lora_rank').textContent !== '', null, WAIT);
  assert.equal(await page.locator('#err-lora_rank').textContent(), 'lora_rank expects an integer in [1, 4096], got 0');
  assert.equal(await page.locator('#f-lora_rank').getAttribute('aria-invalid'), 'true');
  assert.equal(await page.locator('#err-hybrid_training').textContent(), '');  // the old error was cleared
  await page.fill('#f-lora_rank', '8');
  const { report } = await check();
  assert.match(report, /^Training blocks: \d+[\s(]/);
  assert.equal(await page.locator('#f-lora_rank').getAttribute('aria-invalid'), null);
});

test('copying a hybrid run\'s parameters picks its mode and its dataset kind', async () => {
  await page.click('#tab-raw_text');
  await page.click('#copy-refresh');
  await page.locator('#copy-from option[value="hybrid-run"]').waitFor({ state: 'attached', ...WAIT });
  await page.selectOption('#copy-from', 'hybrid-run');
  await page.click('#copy-apply');
  await page.waitForFunction(() => document.getElementById('copy-note').textContent.startsWith('copied from hybrid-run'),
                             null, WAIT);
  assert.equal(await page.locator('#tab-hybrid').getAttribute('aria-checked'), 'true');
  assert.equal(await page.locator('#hybrid-part-jsonl').getAttribute('aria-checked'), 'true');
  assert.equal(await page.locator('#f-hybrid_data_ratio').inputValue(), '40');
  assert.equal(await page.locator('#s-hybrid_data_ratio').inputValue(), '40');
  const { body } = await check();
  assert.equal(body.hybrid_training, true);
  assert.equal(body.jsonl_dataset, 'chat.jsonl');
  assert.equal(body.hybrid_data_ratio, 40);
});

test('the form fits phone, tablet and desktop widths', async () => {
  await openAdvanced();
  for (const [width, height] of [[390, 844], [768, 1024], [1440, 900]]) {
    await page.setViewportSize({ width, height });
    const w = await page.evaluate(() => ({ doc: document.documentElement.scrollWidth, body: document.body.scrollWidth }));
    assert.ok(w.doc <= width && w.body <= width, `the page at ${width} px is ${w.doc} px wide`);
    // No control sticks out of its field: sliders, their text boxes, pickers and refresh buttons.
    const out = await page.evaluate(() => [...document.querySelectorAll('#form-groups .field')].filter(b => b.checkVisibility())
      .flatMap(b => [...b.querySelectorAll('input, select, button')].filter(e => e.checkVisibility()).filter(e => {
        const r = e.getBoundingClientRect(), f = b.getBoundingClientRect();
        return r.right > f.right + 1 || r.left < f.left - 1;
      }).map(e => e.id || e.className)));
    assert.deepEqual(out, [], `at ${width} px`);
    await page.screenshot({ path: path.join(shots, `words-${width}.png`), fullPage: true });
  }
  await page.setViewportSize({ width: 1400, height: 1000 });
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
