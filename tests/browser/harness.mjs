// Browser-test harness: makes a fixture folder (tpro_serve_fixture), starts `tpro serve` on a
// free loopback port (--port 0; the URL is read from its first line), launches Debian's
// chromium through playwright-core (headless, no sandbox, a fresh profile), and cleans all
// of it up. Paths come from the environment ctest sets: TPRO_BIN, TPRO_FIXTURE_BIN,
// TPRO_ARTIFACTS (screenshots). Missing tools are a failure with the command that fixes it.
import { spawn, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const here = path.dirname(new URL(import.meta.url).pathname);

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run these tests through ctest, which sets it)`);
  return v;
}

export function loadPlaywright() {
  const req = createRequire(path.join(here, '..', 'js', 'package.json'));
  try {
    return req('playwright-core');
  } catch (e) {
    throw new Error(`playwright-core is missing (hint: npm ci --prefix tests/js): ${e.message}`);
  }
}

export const chromiumPath = process.env.TPRO_CHROMIUM || '/usr/bin/chromium';

export function makeFixture() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tpro-browser-'));
  execFileSync(need('TPRO_FIXTURE_BIN'), [dir], { stdio: 'inherit' });
  return dir;
}

// Starts tpro serve on the fixture; resolves to { url, proc, output() }.
export async function startServer(dir) {
  const args = ['serve', '--port', '0', '--models', path.join(dir, 'models'), '--data', path.join(dir, 'data'),
                '--loras', path.join(dir, 'loras')];
  // setpriv --pdeathsig: the server dies with this test process even if the test is killed.
  const cmd = fs.existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : need('TPRO_BIN');
  const argv = cmd === '/usr/bin/setpriv' ? ['--pdeathsig', 'TERM', need('TPRO_BIN'), ...args] : args;
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  proc.stdout.on('data', d => { out += d; });
  proc.stderr.on('data', d => { out += d; });
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tpro serve printed no URL within 30 s:\n${out}`)), 30000);
    const check = () => {
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) { clearTimeout(timer); resolve(m[1]); }
    };
    proc.stdout.on('data', check);
    proc.on('exit', code => { clearTimeout(timer); reject(new Error(`tpro serve exited with ${code}:\n${out}`)); });
  });
  return { url, proc, output: () => out };
}

// SIGINT (the server stops a job, which saves) then SIGKILL after 20 s.
export async function stopServer(server) {
  if (!server || server.proc.exitCode !== null) return;
  const exited = new Promise(resolve => server.proc.on('exit', resolve));
  server.proc.kill('SIGINT');
  const timer = setTimeout(() => server.proc.kill('SIGKILL'), 20000);
  await exited;
  clearTimeout(timer);
}

export async function launchBrowser(chromium) {
  if (!fs.existsSync(chromiumPath)) throw new Error(`${chromiumPath} not found (hint: apt-get install -y chromium)`);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tpro-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
           '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  return { context, profile };
}

export function artifactsDir() {
  const dir = process.env.TPRO_ARTIFACTS || path.join(os.tmpdir(), 'tpro-browser-artifacts');
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

// ---- Accessibility: axe-core (tests/js/package.json) in the page under test ----
// checkA11y(page, state) injects axe (once per document), runs it on the whole page as it is
// now and fails listing each serious or critical violation: rule id, impact, help, the
// elements (CSS targets) and axe's help URL. Every rule axe runs by default is checked (WCAG
// 2.0-2.2 A and AA plus best practices); hidden tabs, closed sections and hidden dialogs are
// not rendered, so call it once per state worth checking (each tab, errors shown, a job
// running, a dialog open). Every violation, minor ones included, is also written to
// $TPRO_ARTIFACTS/axe/<state>.json for reading.
const BLOCKING_IMPACTS = new Set(['serious', 'critical']);
let axeSource = null;

export function loadAxeSource() {
  if (axeSource) return axeSource;
  const req = createRequire(path.join(here, '..', 'js', 'package.json'));
  let file;
  try {
    file = req.resolve('axe-core/axe.min.js');
  } catch (e) {
    throw new Error(`axe-core is missing (hint: npm ci --prefix tests/js): ${e.message}`);
  }
  axeSource = fs.readFileSync(file, 'utf8');
  return axeSource;
}

// One violation as a line: "color-contrast (serious): Elements must meet minimum color
// contrast ratio thresholds at #a, #b [https://dequeuniversity.com/...]".
export function formatViolation(v) {
  const targets = v.nodes.map(n => n.target.join(' ')).join(', ');
  return `${v.id} (${v.impact}): ${v.help} at ${targets} [${v.helpUrl}]`;
}

// Returns axe's violations (all impacts); throws when one is serious or critical.
export async function checkA11y(page, state) {
  if (!/^[\w.-]+$/.test(state)) throw new Error(`checkA11y: state '${state}' must be a file name ([A-Za-z0-9_.-])`);
  if (!(await page.evaluate(() => typeof window.axe === 'object'))) {
    // Evaluated through the DevTools protocol: the page's own script policy does not apply.
    await page.evaluate(loadAxeSource());
  }
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                                     nodes: v.nodes.map(n => ({ target: n.target, html: n.html, summary: n.failureSummary })) }));
  });
  const dir = path.join(artifactsDir(), 'axe');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `${state}.json`), JSON.stringify(result, null, 1));
  const blocking = result.filter(v => BLOCKING_IMPACTS.has(v.impact));
  if (blocking.length) {
    throw new Error(`axe: ${blocking.length} serious or critical accessibility violation(s) at state '${state}':\n` +
                    blocking.map(v => `  ${formatViolation(v)}`).join('\n'));
  }
  return result;
}
