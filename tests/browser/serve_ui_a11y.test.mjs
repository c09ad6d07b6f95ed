// Accessibility of the web UI of `tpro serve` in a real browser (as serve_ui.test.mjs): the
// axe-core check of the harness fails on a violation; the tabs are WAI-ARIA tabs (roles,
// aria-selected, aria-controls, arrow keys); help and error text are linked to their inputs
// and invalid fields carry aria-invalid; status areas are live regions and job state changes
// are announced; the chart's text alternative gives the latest values as a run goes; the Tab
// order follows the page. axe reports no serious or critical violation at any of these states.
// Screenshots of every tab after a run at 390, 768 and 1440 px (docs/img is made from them)
// and the axe reports go to $TPRO_ARTIFACTS.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { loadPlaywright, makeFixture, startServer, stopServer, launchBrowser, artifactsDir, checkA11y } from './harness.mjs';

const WAIT = { timeout: 60000 };
const RUN = 'a11y-run';
let dir, server, browser, page;
const pageErrors = [];
const shots = artifactsDir();

async function openPage() {
  page = await browser.context.newPage();
  page.on('pageerror', e => pageErrors.push(e.message));
  page.on('console', m => {
    if (m.type() === 'error' && !/^Failed to load resource: the server responded with a status of 400 /.test(m.text()))
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

// The text a screen reader reads as an element's description: its aria-describedby targets.
const description = sel => page.locator(sel).evaluate(e => (e.getAttribute('aria-describedby') || '').split(/\s+/)
  .filter(Boolean).map(id => document.getElementById(id)?.textContent.trim() ?? `<missing #${id}>`).join(' | '));
const focusedId = () => page.evaluate(() => document.activeElement?.id || '');
const announced = () => page.locator('#announcer').textContent();
async function waitAnnounced(re) {
  const ok = await page.waitForFunction(s => new RegExp(s).test(document.getElementById('announcer').textContent),
                                        re.source, WAIT).then(() => true, () => false);
  assert.ok(ok, `the announcer says '${await announced()}', not ${re}`);
}
const chartLabel = () => page.locator('#chart').getAttribute('aria-label');
const CHART_RE = /^Loss chart of the current run: (\d+) steps?; latest step (\d+), epoch [\d.]+, loss (\d+\.\d{4}), learning rate [\d.]+e[-+]\d+/;

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

test('the axe check fails on a violation and names its rule, element and help', async () => {
  await page.evaluate(() => document.querySelector('main').append(Object.assign(document.createElement('input'), { id: 'a11y-probe' })));
  await assert.rejects(checkA11y(page, 'probe-unlabelled-input'),
                       e => /serious or critical accessibility violation\(s\) at state 'probe-unlabelled-input'/.test(e.message)
                            && /^ {2}label \(critical\): Form elements must have labels at #a11y-probe \[https:/m.test(e.message));
  await page.evaluate(() => document.getElementById('a11y-probe').remove());
  assert.deepEqual((await checkA11y(page, 'initial')).filter(v => v.impact === 'serious' || v.impact === 'critical'), []);
});

test('the sections are WAI-ARIA tabs: roles, selection, panels, arrow keys', async () => {
  const nav = page.locator('nav#tabs');
  assert.equal(await nav.getAttribute('role'), 'tablist');
  assert.equal(await nav.getAttribute('aria-label'), 'Sections');
  const names = await page.locator('nav .tab').evaluateAll(bs => bs.map(b => b.dataset.tab));
  assert.ok(names.length >= 3 && names[0] === 'train', `tabs: ${names}`);
  const state = () => page.locator('nav .tab').evaluateAll(bs => bs.map(b => {
    const panel = document.getElementById(b.getAttribute('aria-controls'));
    return { id: b.id, role: b.getAttribute('role'), selected: b.getAttribute('aria-selected'), tabindex: b.tabIndex,
             panel: panel?.id, panelRole: panel?.getAttribute('role'), labelledby: panel?.getAttribute('aria-labelledby'),
             shown: !!panel && getComputedStyle(panel).display !== 'none' };
  }));
  const expect = selected => names.map(n => ({ id: `tabbtn-${n}`, role: 'tab', selected: String(n === selected),
    tabindex: n === selected ? 0 : -1, panel: `tab-${n}`, panelRole: 'tabpanel', labelledby: `tabbtn-${n}`, shown: n === selected }));
  assert.deepEqual(await state(), expect('train'));

  await page.focus('#tabbtn-train');
  const keys = [['ArrowRight', names[1]], ['ArrowRight', names[2]], ['End', names[names.length - 1]],
                ['ArrowRight', names[0]], ['ArrowLeft', names[names.length - 1]], ['Home', names[0]]];
  for (const [key, want] of keys) {
    await page.keyboard.press(key);
    assert.equal(await focusedId(), `tabbtn-${want}`, `after ${key}`);
    assert.deepEqual(await state(), expect(want), `after ${key}`);
  }
  await page.click('#tabbtn-runs');  // a click selects as well
  assert.deepEqual(await state(), expect('runs'));
  await page.click('#tabbtn-train');

  // The dataset kinds in the form are a tab list too.
  const bar = page.locator('#g-sources .subtabs');
  assert.equal(await bar.getAttribute('role'), 'tablist');
  assert.equal(await bar.getAttribute('aria-label'), 'Dataset source');
  const sub = () => bar.locator('button').evaluateAll(bs => bs.map(b => [b.id, b.getAttribute('role'), b.getAttribute('aria-selected'),
    b.getAttribute('aria-controls'), document.getElementById(b.getAttribute('aria-controls'))?.classList.contains('active')]));
  const first = await sub();
  assert.deepEqual(first[0], ['tab-raw_text', 'tab', 'true', 'g-raw_text', true]);
  assert.deepEqual(first[1], ['tab-json', 'tab', 'false', 'g-json', false]);
  await page.focus('#tab-raw_text');
  await page.keyboard.press('ArrowRight');
  assert.equal(await focusedId(), 'tab-json');
  assert.deepEqual((await sub()).slice(0, 2), [['tab-raw_text', 'tab', 'false', 'g-raw_text', false],
                                               ['tab-json', 'tab', 'true', 'g-json', true]]);
  await checkA11y(page, 'dataset-tab-json');
  await page.keyboard.press('ArrowLeft');
  assert.equal(await focusedId(), 'tab-raw_text');
});

test('the Tab order follows the page: one stop per tab list, in document order, all visible', async () => {
  assert.equal(await page.locator('[tabindex]:not([tabindex="0"]):not([tabindex="-1"])').count(), 0, 'a positive tabindex');
  // From the selected section tab (Shift+Tab from it leaves the page's controls: nothing is before it).
  await page.focus('#tabbtn-train');
  await page.keyboard.press('Shift+Tab');
  assert.equal(await page.evaluate(() => document.activeElement === document.body), true, 'Shift+Tab from the first tab');
  await page.focus('#tabbtn-train');
  const seq = [await page.evaluate(() => ({ key: document.activeElement.id, at: [...document.querySelectorAll('*')].indexOf(document.activeElement),
                                            visible: true, form: false }))];
  for (let i = 0; i < 40; ++i) {
    await page.keyboard.press('Tab');
    const f = await page.evaluate(() => {
      const e = document.activeElement, r = e.getBoundingClientRect();
      const all = [...document.querySelectorAll('*')];
      return { key: e.id || `${e.tagName.toLowerCase()}:${e.textContent.trim().slice(0, 20)}`, at: all.indexOf(e),
               visible: r.width > 0 && r.height > 0, form: !!e.closest('#form-groups') };
    });
    seq.push(f);
    if (f.form) break;
  }
  const keys = seq.map(f => f.key);
  assert.deepEqual(keys.slice(0, 9), ['tabbtn-train', 'start', 'check', 'chart-x', 'chart-right', 'chart-smooth', 'chart-log',
                                      'summary:Messages', 'log'], keys.join(' > '));
  assert.deepEqual(keys.slice(9, 11), ['copy-from', 'copy-apply']);
  assert.ok(seq[seq.length - 1].form, `Tab never reached the form: ${keys.join(' > ')}`);
  for (let i = 1; i < seq.length; ++i) assert.ok(seq[i].at > seq[i - 1].at, `${keys[i]} comes before ${keys[i - 1]} in the page`);
  for (const f of seq) assert.ok(f.visible, `${f.key} has focus but is not visible`);
  assert.equal(keys.filter(k => k.startsWith('tabbtn-')).length, 1, 'more than one stop in the section tabs');
});

test('help and error texts are linked to their inputs; invalid fields are marked', async () => {
  // Every field of the three forms: its control is described by its help text and its error box.
  const links = await page.locator('#train-form .field, #ppl-form .field, #export-form .field').evaluateAll(boxes => boxes.map(box => {
    const c = box.querySelector('input, select, textarea');
    const ids = (c.getAttribute('aria-describedby') || '').split(/\s+/);
    const help = box.querySelector('small'), err = box.querySelector('.field-error');
    return { field: c.id, help: !help || ids.includes(help.id), err: !!err && ids.includes(err.id),
             labelled: c.labels.length > 0 };
  }));
  assert.ok(links.length > 70, `${links.length} fields`);
  for (const l of links) assert.deepEqual(l, { field: l.field, help: true, err: true, labelled: true });
  assert.match(await description('#f-lora_rank'), /^\S.* \| $/);  // the help, then an empty error

  await setField('model', 'tiny');
  await setField('raw_text_file', 'sample.txt');
  await setField('lora_rank', '0');
  await page.click('#start');
  await page.waitForFunction(() => document.getElementById('err-lora_rank').textContent !== '', null, WAIT);
  const message = 'lora_rank expects an integer in [1, 4096], got 0';
  assert.equal(await page.locator('#f-lora_rank').getAttribute('aria-invalid'), 'true');
  assert.match(await description('#f-lora_rank'), new RegExp(` \\| ${message.replace(/[[\]]/g, '\\$&')}$`));
  assert.equal(await focusedId(), 'f-lora_rank');  // focus goes to the field, which reads its error
  assert.deepEqual(await page.locator('[aria-invalid="true"]').evaluateAll(es => es.map(e => e.id)), ['f-lora_rank']);
  await checkA11y(page, 'train-field-error');
  await page.screenshot({ path: path.join(shots, 'a11y-train-field-error.png') });
  // The next request clears the error and the mark.
  await setField('lora_rank', '4');
  await setField('cutoff_len', '64');
  await page.click('#check');
  await page.waitForFunction(() => /^Training blocks: \d+/.test(document.getElementById('check-report').textContent), null, WAIT);
  assert.equal(await page.locator('[aria-invalid]').count(), 0);
  await waitAnnounced(/^dataset check: Training blocks: \d+$/);

  // The perplexity form: the same for its fields.
  await page.click('#tabbtn-perplexity');
  await page.selectOption('#ppl-model', 'tiny');
  await page.fill('#ppl-text', 'short.txt');
  await page.fill('#ppl-stride', '0');
  await page.fill('#ppl-max-length', '32');
  await page.click('#ppl-run');
  await page.waitForFunction(() => document.getElementById('ppl-err-stride').textContent !== '', null, WAIT);
  assert.equal(await page.locator('#ppl-stride').getAttribute('aria-invalid'), 'true');
  assert.equal(await description('#ppl-stride'), 'stride must be in [1, 32], got 0');
  assert.equal(await focusedId(), 'ppl-stride');
  await checkA11y(page, 'perplexity-field-error');
  await page.fill('#ppl-stride', '16');
  await page.click('#ppl-run');
  await page.locator('#ppl-table tbody tr').first().waitFor(WAIT);
  assert.equal(await page.locator('#ppl-stride').getAttribute('aria-invalid'), null);
  await waitAnnounced(/^perplexity \d+\.\d{4}$/);
  await checkA11y(page, 'perplexity-result');
  await page.click('#tabbtn-train');
});

test('status areas are live regions; the per-step status line is not', async () => {
  const attrs = sel => page.locator(sel).evaluate(e => ({ role: e.getAttribute('role'), live: e.getAttribute('aria-live') }));
  assert.deepEqual(await attrs('#announcer'), { role: 'status', live: 'polite' });
  assert.equal(await page.locator('#announcer').getAttribute('aria-atomic'), 'true');
  assert.ok(await page.locator('#announcer').evaluate(e => e.getBoundingClientRect().width <= 1), 'the announcer is visible');
  assert.deepEqual(await attrs('#memory-plan'), { role: null, live: 'polite' });
  assert.deepEqual(await attrs('#conn'), { role: null, live: 'polite' });
  for (const sel of ['#copy-note', '#ex-result']) assert.deepEqual(await attrs(sel), { role: 'status', live: null }, sel);
  for (const sel of ['#form-error', '#ppl-error', '#ex-error', '#ex-exists', '#ctl-error'])
    assert.deepEqual(await attrs(sel), { role: 'alert', live: null }, sel);
  // These change at every step: job state changes go to the announcer instead.
  for (const sel of ['#status', '#ppl-status', '#ex-status', '#train-eta'])
    assert.deepEqual(await attrs(sel), { role: null, live: null }, sel);
  for (const sel of ['#train-progress', '#ppl-progress', '#ex-progress'])
    assert.match(await page.locator(sel).getAttribute('aria-label'), /^(training|perplexity|export) progress$/, sel);
});

test('a run: state changes announced, the chart\'s text alternative follows it, control errors marked', async () => {
  assert.equal(await page.locator('#chart').getAttribute('role'), 'img');
  assert.equal(await chartLabel(), 'Loss chart of the current run: no steps yet');
  const params = { lora_name: RUN, raw_text_file: 'sample.txt', lora_rank: 4, lora_alpha: 8, cutoff_len: 64,
                   micro_batch_size: 2, max_steps: 1000000, threads: 1, save_steps_under_loss: 0, eval_steps: 0,
                   warmup_steps: 0, learning_rate: '1e-3', lora_dropout: 0 };
  for (const [k, v] of Object.entries(params)) await setField(k, v);
  await page.click('#start');
  await waitAnnounced(new RegExp(`^${RUN}: running`));
  await page.waitForFunction(() => Number(document.getElementById('chart').dataset.points) >= 3, null, WAIT);
  let m = CHART_RE.exec(await chartLabel());
  assert.ok(m, `chart label: ${await chartLabel()}`);
  const steps = Number(m[2]);
  await page.waitForFunction(([re, n]) => Number(new RegExp(re).exec(document.getElementById('chart').getAttribute('aria-label'))?.[2]) > n,
                             [CHART_RE.source, steps], WAIT);
  await checkA11y(page, 'training-running');

  await page.click('#save-now');
  await waitAnnounced(/^checkpoint saved at step \d+$/);
  await page.waitForFunction(() => /checkpoints?$/.test(document.getElementById('chart').getAttribute('aria-label')), null, WAIT);
  assert.match(await chartLabel(), /; 1 checkpoint$/);

  await page.fill('#ctl-stop-loss', '-1');
  await page.click('#ctl-apply');
  await page.waitForFunction(() => document.getElementById('ctl-error').textContent !== '', null, WAIT);
  assert.equal(await page.locator('#ctl-stop-loss').getAttribute('aria-invalid'), 'true');
  assert.equal(await description('#ctl-stop-loss'), 'stop_at_loss expects a number in [0, 1000], got -1');
  assert.equal(await page.locator('#ctl-stop-epoch').getAttribute('aria-invalid'), null);
  await checkA11y(page, 'training-control-error');

  await page.fill('#ctl-stop-loss', '900');  // the loss is about 5-8: the run stops at the next step
  await page.click('#ctl-apply');
  await page.waitForSelector('#status[data-state="finished"]', WAIT);
  assert.equal(await page.locator('#ctl-stop-loss').getAttribute('aria-invalid'), null);
  await waitAnnounced(new RegExp(`^${RUN}: finished \\(.*reached stop_at_loss 900\\)`));
  // The label gives the run's last step and loss as the server has them.
  const graph = await (await fetch(new URL(`/api/runs/${RUN}/graph`, server.url))).json();
  const last = graph.records[graph.records.length - 1];
  await page.waitForFunction(n => document.getElementById('chart').getAttribute('aria-label').includes(`latest step ${n},`), last.step, WAIT);
  m = CHART_RE.exec(await chartLabel());
  assert.equal(Number(m[1]), graph.records.length);
  assert.equal(Number(m[2]), last.step);
  assert.equal(m[3], last.loss.toFixed(4));
  await checkA11y(page, 'training-finished');

  // The past run's chart describes that run.
  await page.click('#tabbtn-runs');
  await page.click(`#runs-table tr[data-run="${RUN}"] button.run-open`);
  await page.waitForFunction(() => Number(document.getElementById('run-chart').dataset.points) > 0, null, WAIT);
  assert.match(await page.locator('#run-chart').getAttribute('aria-label'),
               new RegExp(`^Loss chart of the run shown: ${graph.records.length} steps; latest step ${last.step}, .*; 1 checkpoint$`));
  await checkA11y(page, 'runs-chart');
  await page.click('#tabbtn-train');
});

// The viewport shots are the ones docs/img is made from (docs/SERVE.md says how).
test('every tab after a run at 390, 768 and 1440 px: screenshots; the Train tab checked at each', async () => {
  const tabs = await page.locator('nav .tab').evaluateAll(bs => bs.map(b => b.dataset.tab));
  for (const [width, height] of [[390, 844], [768, 1024], [1440, 900]]) {
    await page.setViewportSize({ width, height });
    for (const tab of tabs) {
      await page.click(`#tabbtn-${tab}`);
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.screenshot({ path: path.join(shots, `a11y-${tab}-${width}.png`) });
      if (tab === 'train') await checkA11y(page, `train-finished-${width}`);
    }
  }
  await page.click('#tabbtn-train');
  await page.setViewportSize({ width: 1400, height: 1000 });
});

test('no script errors on the page', () => {
  assert.deepEqual(pageErrors, []);
});
