// The browser guide in real Chromium (Debian's, driven by playwright-core), served from
// web/dist by a static server on 127.0.0.1 started here. Screenshots of each tab go to
// tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = join(root, 'web/dist');
const artifacts = join(root, 'tests/artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

let server;
let browser;
let context;
let page;
const requests = [];
const problems = [];

before(async () => {
  assert.ok(existsSync(join(dist, 'index.html')), 'web/dist missing: run `npm run build` first');
  mkdirSync(artifacts, { recursive: true });
  server = await serve(dist);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url.replace(/\/$/, '') });
  // Every request any page of the context makes, whatever its origin.
  context.on('request', (r) => requests.push(r.url()));
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready=true]');
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** The diagnostics beside a field: `[{code, severity}]`. */
async function diagsOf(fieldId) {
  return page.$$eval(`#${fieldId}-diag li`, (lis) => lis.map((li) => ({ code: li.dataset.code, severity: li.className })));
}

async function waitForCode(fieldId, code) {
  await page.waitForFunction(
    ([id, c]) => [...document.querySelectorAll(`#${id}-diag li`)].some((li) => li.dataset.code === c),
    [fieldId, code], { timeout: 5000 },
  );
}

async function waitForClear(fieldId) {
  await page.waitForFunction((id) => document.querySelectorAll(`#${id}-diag li`).length === 0, fieldId, { timeout: 5000 });
}

async function outputsSettle() {
  // Outputs render on the next animation frame after input.
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

const text = (sel) => page.textContent(sel);

// For each tab: the valid values to fill, then [field, bad value, expected code, fix].
const TABS = {
  aws: {
    fill: { 'mk-region': 'us-east-1', 'mk-key': ARN },
    bad: ['mk-key', 'arn:aws:kms:us-east-1:1111:key/1234abcd-12ab-34cd-56ef-1234567890ab', 'KS-AWS-006', ARN],
  },
  azure: {
    fill: { 'mk-keyVaultEndpoint': 'myvault.vault.azure.net', 'mk-keyName': 'keyshift-cmk' },
    bad: ['mk-keyVersion', 'not-hex', 'KS-AZ-004', '0123456789abcdef0123456789abcdef'],
  },
  gcp: {
    fill: { 'mk-projectId': 'my-project', 'mk-location': 'global', 'mk-keyRing': 'keyshift', 'mk-keyName': 'cmk' },
    bad: ['mk-projectId', 'My Project!', 'KS-GCP-001', 'my-project'],
  },
  kmip: {
    fill: { 'cred-endpoint': 'kmip.example.com:5696', 'tls-tlsCertificateKeyFile': 'client.pem', 'mk-keyId': '42' },
    bad: ['cred-endpoint', 'kmip.example.com', 'KS-KMIP-001', 'kmip.example.com:5696'],
  },
};

test('each provider tab flags an invalid value beside its field and clears it when fixed', async () => {
  for (const [tab, spec] of Object.entries(TABS)) {
    await page.click(`#tab-${tab}`);
    assert.equal(await page.getAttribute(`#tab-${tab}`, 'aria-selected'), 'true');
    assert.equal(await page.isVisible(`#panel-${tab}`), true);
    for (const [f, v] of Object.entries(spec.fill)) await page.fill(`#f-${tab}-${f}`, v);
    const [f, bad, code, fix] = spec.bad;
    const id = `f-${tab}-${f}`;
    await page.fill(`#${id}`, bad);
    await waitForCode(id, code);
    const shown = await diagsOf(id);
    const severity = shown.find((d) => d.code === code).severity;
    assert.equal(await page.getAttribute(`#${id}`, 'aria-invalid'), String(shown.some((d) => d.severity === 'error')));
    assert.equal(await page.getAttribute(`[data-field=${id}]`, 'data-state'), shown.some((d) => d.severity === 'error') ? 'error' : 'warning');
    assert.equal(await page.getAttribute(`#${id}-diag`, 'aria-live'), 'polite');
    const counted = severity === 'error' ? 'data-errors' : 'data-warnings';
    assert.notEqual(await page.getAttribute('#summary', counted), '0', `${tab}: ${JSON.stringify(shown)}`);
    await page.screenshot({ path: join(artifacts, `guide-${tab}-invalid.png`), fullPage: true });
    // The header lists it too; its button moves focus to the field.
    await page.click('#findings summary');
    await page.click(`#all-diags button[data-code=${code}]`);
    assert.equal(await page.evaluate(() => document.activeElement.id), id);
    await page.click('#findings summary');
    await page.fill(`#${id}`, fix);
    await waitForClear(id);
    assert.equal(await page.getAttribute('#summary', 'data-errors'), '0', await text('#summary'));
    assert.equal(await page.getAttribute(`#${id}`, 'aria-invalid'), 'false');
    await outputsSettle();
    await page.screenshot({ path: join(artifacts, `guide-${tab}.png`), fullPage: true });
  }
});

test('a named provider: a bad name is flagged beside the name field', async () => {
  await page.click('#tab-aws');
  await page.fill('#f-aws-name', 'pr od');
  await waitForCode('f-aws-name', 'KS-PRV-002');
  await page.fill('#f-aws-name', 'prod');
  await waitForClear('f-aws-name');
  // Named providers need credentials: said once, for the provider, in its panel.
  await page.waitForFunction(() => [...document.querySelectorAll('#panel-aws-diag li')].some((li) => li.dataset.code === 'KS-PRV-004'));
  await page.fill('#f-aws-name', '');
  await page.waitForFunction(() => document.querySelectorAll('#panel-aws-diag li').length === 0);
});

test('validation runs on every keystroke without blocking typing', async () => {
  await page.click('#tab-aws');
  const id = 'f-aws-mk-region';
  await page.fill(`#${id}`, '');
  await page.focus(`#${id}`);
  await page.keyboard.type('us-east-', { delay: 5 });
  await waitForCode(id, 'KS-AWS-004');
  await page.keyboard.type('1', { delay: 5 });
  await waitForClear(id);
  assert.equal(await page.inputValue(`#${id}`), 'us-east-1');
});

test('outputs change with the inputs', async () => {
  await page.click('#tab-aws');
  await outputsSettle();
  const toml1 = await text('#toml');
  const code1 = await text('#code');
  assert.match(toml1, /provider = "aws"/);
  assert.ok(code1.includes(ARN));
  assert.ok((await text('#policy-doc')).includes(ARN));
  await page.fill('#f-aws-name', 'prod');
  await page.fill('#f-aws-cred-accessKeyId', 'env:AWS_ACCESS_KEY_ID');
  await page.fill('#f-aws-cred-secretAccessKey', 'env:AWS_SECRET_ACCESS_KEY');
  await outputsSettle();
  assert.match(await text('#toml'), /aws:prod/);
  assert.match(await text('#code'), /aws:prod/);
  await page.selectOption('#lang', 'go');
  await outputsSettle();
  const go = await text('#code');
  assert.notEqual(go, code1);
  assert.match(await text('#code-file'), /\.go/);
  await page.check('input[name=stage][value=final]');
  await outputsSettle();
  assert.notEqual(await text('#code'), go);
  // Every language renders, in both stages.
  for (const lang of ['python', 'node', 'java', 'go', 'csharp', 'rust', 'mongosh']) {
    await page.selectOption('#lang', lang);
    await outputsSettle();
    assert.ok((await text('#code')).includes(ARN), lang);
  }
  // Plan: rewrap, then rotate when the key may be exposed.
  assert.ok((await page.$$('#plan-steps > li')).length > 3);
  assert.equal(await page.$$eval('#plan-risks li.blocker', (l) => l.length), 0);
  await page.check('#f-source-exposed');
  await outputsSettle();
  assert.match(await text('#plan-summary'), /rotat|re-encrypt/i);
  await page.uncheck('#f-source-exposed');
  await page.fill('#f-aws-name', '');
  await page.check('input[name=stage][value=transition]');
  await page.selectOption('#lang', 'python');
  await outputsSettle();
  assert.match(await text('#toml'), /\[kmsProviders\.aws\]/);
});

test('the tabs are keyboard-usable', async () => {
  await page.focus('#tab-aws');
  await page.click('#tab-aws');
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getAttribute('#tab-azure', 'aria-selected'), 'true');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'tab-azure');
  await page.keyboard.press('End');
  assert.equal(await page.getAttribute('#tab-kmip', 'aria-selected'), 'true');
  await page.keyboard.press('Home');
  assert.equal(await page.getAttribute('#tab-aws', 'aria-selected'), 'true');
  // Every input has a label.
  const unlabelled = await page.$$eval('input, select, textarea', (els) =>
    els.filter((e) => e.type !== 'radio' && !document.querySelector(`label[for="${e.id}"]`)).map((e) => e.id));
  assert.deepEqual(unlabelled, []);
});

test('copy puts the shown text on the clipboard', async () => {
  await page.click('#tab-aws');
  await outputsSettle();
  await page.click('#copy-toml');
  await page.waitForFunction(() => /Copied/.test(document.getElementById('status').textContent));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), await text('#toml'));
  await page.click('#copy-code');
  await page.waitForFunction(() => /Copied driver code/.test(document.getElementById('status').textContent));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), await text('#code'));
  await page.click('#copy-policy');
  await page.waitForFunction(() => /Copied policy/.test(document.getElementById('status').textContent));
  assert.ok((await page.evaluate(() => navigator.clipboard.readText())).includes(ARN));
});

/** The keyshift binary that checks what the guide writes: KEYSHIFT_BIN when set (a
 * build kept apart from the workspace's target/), else target/debug/keyshift, built
 * when missing. */
function keyshiftBinary() {
  if (process.env.KEYSHIFT_BIN) {
    assert.ok(existsSync(process.env.KEYSHIFT_BIN), `KEYSHIFT_BIN=${process.env.KEYSHIFT_BIN} does not exist`);
    return process.env.KEYSHIFT_BIN;
  }
  const bin = join(root, 'target/debug/keyshift');
  if (!existsSync(bin)) execFileSync('cargo', ['build', '-p', 'keyshift'], { cwd: root, stdio: 'inherit' });
  return bin;
}

test('the downloaded keyshift.toml passes `keyshift check`', async () => {
  for (const tab of Object.keys(TABS)) {
    await page.click(`#tab-${tab}`);
    await outputsSettle();
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-toml')]);
    assert.equal(download.suggestedFilename(), 'keyshift.toml');
    const dir = mkdtempSync(join(tmpdir(), `keyshift-guide-${tab}-`));
    const file = join(dir, 'keyshift.toml');
    await download.saveAs(file);
    assert.equal(readFileSync(file, 'utf8'), await text('#toml'));
    // The guide's default local key reference is file:master-key.txt, next to the file.
    writeFileSync(join(dir, 'master-key.txt'), randomBytes(96), { mode: 0o600 });
    if (tab === 'kmip') writeFileSync(join(dir, 'client.pem'), '');
    const r = spawnSync(keyshiftBinary(), ['check', '-c', file, '--json'], { encoding: 'utf8' });
    const out = JSON.parse(r.stdout);
    assert.equal(out.errors, 0, `${tab}: ${r.stdout}${r.stderr}`);
    assert.equal(r.status, 0, `${tab}: ${r.stdout}${r.stderr}`);
  }
});

test('a pasted keyshift.toml fills the form', async () => {
  const toml = [
    '[keyVault]', 'uri = "env:KV_URI"', 'namespace = "enc.keys"',
    '[kmsProviders.local]', 'key = "env:LOCAL_KEY"',
    '[kmsProviders."gcp:eu"]', 'email = "ks@p.iam.gserviceaccount.com"', 'privateKey = "file:gcp.pem"',
    '[target]', 'provider = "gcp:eu"',
    'masterKey = { projectId = "my-project", location = "europe-west1", keyRing = "ring", keyName = "cmk" }',
  ].join('\n');
  await page.click('#import summary');
  await page.fill('#import-text', 'not = [toml');
  await page.click('#import-load');
  await waitForCode('import', 'KS-CFG-001');
  await page.fill('#import-text', toml);
  await page.click('#import-load');
  await waitForClear('import');
  assert.equal(await page.getAttribute('#tab-gcp', 'aria-selected'), 'true');
  assert.equal(await page.inputValue('#f-gcp-name'), 'eu');
  assert.equal(await page.inputValue('#f-gcp-mk-location'), 'europe-west1');
  assert.equal(await page.inputValue('#f-source-namespace'), 'enc.keys');
  assert.equal(await page.inputValue('#import-text'), '');
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '0', await text('#summary'));
  await outputsSettle();
  assert.match(await text('#toml'), /gcp:eu/);
  // Back to the state the other tests expect.
  await page.fill('#f-gcp-name', '');
  await page.fill('#f-gcp-cred-email', '');
  await page.fill('#f-gcp-cred-privateKey', '');
  await page.fill('#f-gcp-mk-location', 'global');
  await page.fill('#f-source-namespace', 'encryption.__keyVault');
  await page.fill('#f-source-uri', 'env:MONGODB_URI');
  await page.fill('#f-source-key', 'file:master-key.txt');
});

test('state survives a reload, without literal secrets', async () => {
  await page.click('#tab-gcp');
  await page.fill('#f-gcp-mk-keyRing', 'remembered-ring');
  await page.fill('#f-gcp-cred-privateKey', '-----BEGIN PRIVATE KEY----- MIIEvQ');
  await page.fill('#f-source-uri', 'mongodb://admin:hunter2@db.example.com');
  await page.reload();
  await page.waitForSelector('body[data-ready=true]');
  assert.equal(await page.getAttribute('#tab-gcp', 'aria-selected'), 'true');
  assert.equal(await page.inputValue('#f-gcp-mk-keyRing'), 'remembered-ring');
  assert.equal(await page.inputValue('#f-gcp-cred-privateKey'), '');
  const stored = await page.evaluate(() => JSON.stringify(localStorage));
  for (const secret of ['hunter2', 'BEGIN', 'MIIEvQ']) assert.ok(!stored.includes(secret), stored);
  await page.fill('#f-source-uri', 'env:MONGODB_URI');
  await page.fill('#f-gcp-mk-keyRing', 'keyshift');
  // Start over: back to the defaults, in the form and in storage.
  await page.click('#reset');
  assert.equal(await page.inputValue('#f-gcp-mk-keyRing'), '');
  assert.equal(await page.getAttribute('#tab-aws', 'aria-selected'), 'true');
  assert.ok(!(await page.evaluate(() => localStorage.getItem('keyshift-guide-v1'))).includes('my-project'));
  // Refill what the later tests use.
  await page.fill('#f-aws-mk-region', 'us-east-1');
  await page.fill('#f-aws-mk-key', ARN);
});

test('dark mode renders', async () => {
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.click('#tab-aws');
  await outputsSettle();
  const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(bg, 'rgb(251, 251, 249)');
  await page.screenshot({ path: join(artifacts, 'guide-aws-dark.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'light' });
});

test('per-keystroke validation is fast (measured in docs/performance.md)', async () => {
  const ms = await page.evaluate(async () => {
    const ks = await import('/pkg/keyshift_wasm.js');
    const config = {
      keyVault: { uri: 'env:MONGODB_URI', namespace: 'encryption.__keyVault' },
      kmsProviders: { local: { key: 'file:master-key.txt' }, aws: {} },
      target: { provider: 'aws', masterKey: { region: 'us-east-1', key: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab' } },
    };
    const times = [];
    for (let i = 0; i < 300; i++) {
      const t0 = performance.now();
      ks.validate(config);
      times.push(performance.now() - t0);
    }
    times.sort((a, b) => a - b);
    return times[150];
  });
  // The target is 1 ms (DESIGN.md); a loose bound here, since CI machines are shared.
  assert.ok(ms < 10, `median ${ms} ms`);
});

test('no request leaves the page origin; no errors on the page', async () => {
  const origin = new URL(server.url).origin;
  const foreign = requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith(`blob:${origin}/`));
  assert.deepEqual(foreign, []);
  assert.ok(requests.some((u) => u.endsWith('.wasm')));
  assert.deepEqual(problems, []);
  // The server saw the same requests (nothing went around the browser's view).
  assert.ok(server.requests.includes('/pkg/keyshift_wasm_bg.wasm'));
});

test('`keyshift guide` serves the same guide, with the CSP header', async (t) => {
  const bin = process.env.KEYSHIFT_BIN ?? join(root, 'target/debug/keyshift');
  if (!existsSync(bin) || spawnSync(bin, ['guide', '--help']).status !== 0) {
    t.skip('target/debug/keyshift has no `guide` command yet');
    return;
  }
  const child = spawn(bin, ['guide', '--port', '0', '--no-open'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const url = await new Promise((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`no address printed: ${out}`)), 10000);
      child.stdout.on('data', (d) => {
        out += d;
        const m = /http:\/\/127\.0\.0\.1:\d+\//.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(m[0]);
        }
      });
      child.on('exit', (code) => reject(new Error(`keyshift guide exited ${code}: ${out}`)));
    });
    const p = await context.newPage();
    const seen = [];
    const errors = [];
    p.on('request', (r) => seen.push(r.url()));
    p.on('pageerror', (e) => errors.push(e.message));
    const response = await p.goto(url);
    assert.equal(response.status(), 200);
    const csp = response.headers()['content-security-policy'];
    assert.match(csp, /script-src 'self' 'wasm-unsafe-eval'/);
    assert.match(csp, /default-src 'none'/);
    await p.waitForSelector('body[data-ready=true]');
    assert.match(await p.textContent('#version'), /keyshift/);
    const origin = new URL(url).origin;
    assert.deepEqual(seen.filter((u) => !u.startsWith(origin + '/')), []);
    assert.deepEqual(errors, []);
    await p.close();
  } finally {
    child.kill();
  }
});
