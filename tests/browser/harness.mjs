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
