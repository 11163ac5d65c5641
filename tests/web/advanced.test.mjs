// The guide's "Advanced" section in real Chromium: the optional [rewrap] tuning,
// [rotate] collections and [retire] deployments. Each field is judged by core (through wasm) as you type, its
// values reach keyshift.toml and the plan, the file passes `keyshift check`, and the
// section stays usable from the keyboard. Own browser and page: the state here never
// leaks into browser.test.mjs. Screenshots go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = join(root, 'web/dist');
const artifacts = join(root, 'tests/artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const FILTER = '{"masterKey.provider": "local"}';

let server;
let browser;
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
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url.replace(/\/$/, '') });
  context.on('request', (r) => requests.push(r.url()));
  page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready=true]');
  await page.fill('#f-aws-mk-region', 'us-east-1');
  await page.fill('#f-aws-mk-key', ARN);
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** The diagnostics beside a field: `[{code, severity, message}]`. */
async function diagsOf(fieldId) {
  return page.$$eval(`#${fieldId}-diag li`, (lis) => lis.map((li) => ({
    code: li.dataset.code, severity: li.className, message: li.querySelector('.msg').textContent,
  })));
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
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

const text = (sel) => page.textContent(sel);
const isOpen = () => page.$eval('#advanced', (d) => d.open);

/** The commands of a plan step, or null when the plan has no such step. */
async function stepCommands(id) {
  return page.evaluate((s) => document.querySelector(`#plan-steps > li[data-step="${s}"] pre code`)?.textContent ?? null, id);
}

test('Advanced is collapsed by default and opens from the keyboard', async () => {
  assert.equal(await isOpen(), false);
  assert.equal(await page.isVisible('#f-rewrap-batchSize'), false);
  assert.equal(await page.isVisible('#f-rotate-collections'), false);
  await page.focus('#advanced > summary');
  await page.keyboard.press('Enter');
  assert.equal(await isOpen(), true);
  for (const id of ['f-rewrap-filter', 'f-rewrap-batchSize', 'f-rewrap-concurrency', 'f-rewrap-backupDir', 'f-rotate-collections']) {
    assert.equal(await page.isVisible(`#${id}`), true, id);
    // Labelled, described by its help and its diagnostics.
    assert.equal(await page.$$eval(`label[for=${id}]`, (l) => l.length), 1, id);
    const described = (await page.getAttribute(`#${id}`, 'aria-describedby')).split(' ');
    assert.ok(described.includes(`${id}-help`) && described.includes(`${id}-diag`), id);
    assert.equal(await page.getAttribute(`#${id}-diag`, 'aria-live'), 'polite');
  }
  assert.equal(await page.evaluate(() => document.getElementById('f-rotate-collections').tagName), 'TEXTAREA');
  assert.equal(await page.getAttribute('#f-rewrap-batchSize', 'inputmode'), 'numeric');
  // Tab moves from the summary into the first field.
  await page.focus('#advanced > summary');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-rewrap-filter');
  // Nothing set yet: the toml has neither section.
  await outputsSettle();
  assert.doesNotMatch(await text('#toml'), /\[rewrap\]|\[rotate\]/);
});

test('a bad batchSize is flagged beside its field, and so are the other [rewrap] fields', async () => {
  const id = 'f-rewrap-batchSize';
  await page.fill(`#${id}`, '0');
  await waitForCode(id, 'KS-RW-003');
  const [d] = await diagsOf(id);
  assert.equal(d.severity, 'error');
  assert.match(d.message, /batchSize is 0/);
  assert.equal(await page.getAttribute(`#${id}`, 'aria-invalid'), 'true');
  assert.equal(await page.getAttribute(`[data-field=${id}]`, 'data-state'), 'error');
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '1', await text('#summary'));
  assert.equal(await text('#advanced-state'), '(1 set, 1 error)');
  await page.screenshot({ path: join(artifacts, 'guide-advanced-invalid.png'), fullPage: true });
  // Not a number at all: core says which type it wants.
  await page.fill(`#${id}`, 'lots');
  await waitForCode(id, 'KS-CFG-003');
  await page.fill(`#${id}`, '64');
  await waitForClear(id);
  assert.equal(await page.getAttribute(`#${id}`, 'aria-invalid'), 'false');

  const cases = [
    ['f-rewrap-concurrency', '999', 'KS-RW-004', '16'],
    ['f-rewrap-filter', '{masterKey.provider: "local"}', 'KS-RW-001', FILTER],
    ['f-rewrap-filter', '["local"]', 'KS-RW-002', FILTER],
  ];
  for (const [field, bad, code, fix] of cases) {
    await page.fill(`#${field}`, bad);
    await waitForCode(field, code);
    await page.fill(`#${field}`, fix);
    await waitForClear(field);
  }
  await page.fill('#f-rewrap-backupDir', 'backups/keyshift');
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '0', await text('#summary'));
});

test('a bad namespace in rotate collections gets its KS-ROT diagnostic beside the list', async () => {
  const id = 'f-rotate-collections';
  assert.match(await text('#adv-rotate-help'), /Used only when the local master key may have been exposed/);
  await page.check('#f-source-exposed');
  assert.match(await text('#adv-rotate-help'), /marked exposed, so the plan rotates/);
  const cases = [
    ['app.customers\nbad', 'KS-ROT-001', /`bad` is not a valid db\.coll/],
    ['app.customers\nadmin.users', 'KS-ROT-003', /admin\.users/],
    ['encryption.__keyVault', 'KS-ROT-002', /key vault/],
  ];
  for (const [value, code, message] of cases) {
    await page.fill(`#${id}`, value);
    await waitForCode(id, code);
    const shown = await diagsOf(id);
    assert.equal(shown.length, 1, JSON.stringify(shown));
    assert.match(shown[0].message, message);
    assert.equal(await page.getAttribute(`#${id}`, 'aria-invalid'), 'true');
    assert.equal(await page.getAttribute(`[data-field=${id}]`, 'data-state'), 'error');
  }
  await page.screenshot({ path: join(artifacts, 'guide-advanced-rotate-invalid.png'), fullPage: true });
  // A repeat is only a warning.
  await page.fill(`#${id}`, 'app.customers\napp.customers');
  await waitForCode(id, 'KS-ROT-004');
  assert.equal(await page.getAttribute(`[data-field=${id}]`, 'data-state'), 'warning');
  assert.equal(await page.getAttribute(`#${id}`, 'aria-invalid'), 'false');
  // Blank lines and surrounding spaces do not count.
  await page.fill(`#${id}`, '  app.customers\n\napp.orders  \n');
  await waitForClear(id);
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '0', await text('#summary'));
});

test('a finding inside the collapsed section opens it and focuses its field', async () => {
  await page.fill('#f-rewrap-batchSize', '20000');
  await waitForCode('f-rewrap-batchSize', 'KS-RW-003');
  await page.click('#advanced > summary');
  assert.equal(await isOpen(), false);
  assert.match(await text('#advanced-state'), /1 error/);
  await page.click('#findings summary');
  await page.click('#all-diags button[data-code=KS-RW-003]');
  assert.equal(await isOpen(), true);
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-rewrap-batchSize');
  await page.click('#findings summary');
  await page.fill('#f-rewrap-batchSize', '64');
  await waitForClear('f-rewrap-batchSize');
});

test('set values appear in keyshift.toml and the plan', async () => {
  await outputsSettle();
  const toml = await text('#toml');
  assert.match(toml, /^\[rewrap\]$/m);
  assert.ok(toml.includes(`filter = '${FILTER}'`) || toml.includes(`filter = ${JSON.stringify(FILTER)}`), toml);
  assert.match(toml, /^batchSize = 64$/m);
  assert.match(toml, /^concurrency = 16$/m);
  assert.match(toml, /^backupDir = "backups\/keyshift"$/m);
  assert.match(toml, /^\[rotate\]\ncollections = \["app\.customers", "app\.orders"\]$/m);
  // Rotation: the rotate steps use the list, not --all-collections, and say which.
  assert.match(await text('#plan-summary'), /re-encrypt/i);
  for (const step of ['rotate-dry-run', 'rotate']) {
    const commands = await stepCommands(step);
    assert.ok(commands && commands.includes('keyshift rotate'), `${step}: ${commands}`);
    assert.ok(!commands.includes('--all-collections'), `${step}: ${commands}`);
    const listed = await page.$$eval(`#plan-steps > li[data-step="${step}"] p.scope code`, (c) => c.map((x) => x.textContent));
    assert.deepEqual(listed, ['app.customers', 'app.orders'], step);
  }
  // "Copy commands" copies the commands, not the note beside them.
  await page.click('#copy-plan');
  await page.waitForFunction(() => /Copied plan commands/.test(document.getElementById('status').textContent));
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  assert.match(copied, /# Create new DEKs under the target and re-encrypt the data\nkeyshift rotate --yes\n/);
  // backupDir reaches the plan's rollback.
  assert.match(await text('#plan-rollback'), /backups\/keyshift\/retire-RUN\.jsonl/);
  await page.screenshot({ path: join(artifacts, 'guide-advanced.png'), fullPage: true });

  // Without a list, rotate scans every collection.
  await page.fill('#f-rotate-collections', '');
  await outputsSettle();
  assert.doesNotMatch(await text('#toml'), /\[rotate\]/);
  assert.match(await stepCommands('rotate'), /keyshift rotate --all-collections --yes/);
  assert.equal(await page.$$eval('#plan-steps p.scope', (p) => p.length), 0);
  await page.fill('#f-rotate-collections', 'app.customers\napp.orders');
  // Not exposed: a rewrap plan; the list stays in the file, unused by the plan.
  await page.uncheck('#f-source-exposed');
  await outputsSettle();
  assert.equal(await stepCommands('rotate'), null);
  assert.match(await stepCommands('rewrap'), /keyshift rewrap --yes/);
  assert.equal(await page.$$eval('#plan-steps p.scope', (p) => p.length), 0);
  assert.match(await text('#toml'), /\[rotate\]/);
  await page.check('#f-source-exposed');
  await outputsSettle();
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

test('the downloaded keyshift.toml, with [rewrap] and [rotate], passes `keyshift check`', async () => {
  await outputsSettle();
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-toml')]);
  const dir = mkdtempSync(join(tmpdir(), 'keyshift-guide-advanced-'));
  const file = join(dir, 'keyshift.toml');
  await download.saveAs(file);
  const toml = readFileSync(file, 'utf8');
  assert.equal(toml, await text('#toml'));
  assert.match(toml, /\[rewrap\][\s\S]*\[rotate\]/);
  writeFileSync(join(dir, 'master-key.txt'), randomBytes(96), { mode: 0o600 });
  const r = spawnSync(keyshiftBinary(), ['check', '-c', file, '--json'], { encoding: 'utf8' });
  const out = JSON.parse(r.stdout);
  assert.equal(out.errors, 0, `${r.stdout}${r.stderr}`);
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  // The only findings: the one the exposed key always carries, and retire's reminder
  // that the deployments using the key vault are not confirmed yet.
  const codes = JSON.stringify(out).match(/KS-[A-Z]+-\d{3}/g) ?? [];
  assert.deepEqual([...new Set(codes)], ['KS-LOC-002', 'KS-RET-002'], r.stdout);

  // The CLI reads what the guide wrote the same way: a bad value in the file is
  // reported by `keyshift check` with the code the page shows.
  writeFileSync(file, toml.replace('batchSize = 64', 'batchSize = 0').replace('"app.orders"', '"orders"'));
  const bad = spawnSync(keyshiftBinary(), ['check', '-c', file, '--json'], { encoding: 'utf8' });
  assert.equal(bad.status, 2, `${bad.stdout}${bad.stderr}`);
  for (const code of ['KS-RW-003', 'KS-ROT-001']) assert.ok(bad.stdout.includes(code), `${code}: ${bad.stdout}`);
});

test('[retire]: deployments and the confirmation, judged by core beside each field, reach keyshift.toml', async () => {
  assert.equal(await isOpen(), true);
  // The exposed key plans a rotation: retire's reminder waits beside the confirmation.
  await waitForCode('f-retire-allDeploymentsListed', 'KS-RET-002');
  assert.equal((await diagsOf('f-retire-allDeploymentsListed'))[0].severity, 'warning');
  await page.fill('#f-retire-d0-name', 'orders');
  await page.fill('#f-retire-d0-uri', 'env:ORDERS_MONGODB_URI');
  await waitForClear('f-retire-d0-uri');
  await page.click('#add-deployment');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-retire-d1-name');
  // A reserved name: core's KS-RET-001 beside the name.
  await page.fill('#f-retire-d1-name', 'keyVault');
  await page.fill('#f-retire-d1-uri', 'mongodb+srv://eu.example.net');
  await waitForCode('f-retire-d1-name', 'KS-RET-001');
  assert.equal(await page.getAttribute('#f-retire-d1-name', 'aria-invalid'), 'true');
  await page.fill('#f-retire-d1-name', 'eu-1');
  await waitForClear('f-retire-d1-name');
  // A password in the connection string: beside the connection string.
  await page.fill('#f-retire-d1-uri', 'mongodb://ops:s3cret@eu.example.net');
  await waitForCode('f-retire-d1-uri', 'KS-SEC-001');
  await page.fill('#f-retire-d1-uri', 'eu.example.net');
  await waitForCode('f-retire-d1-uri', 'KS-KV-002');
  await page.fill('#f-retire-d1-uri', 'mongodb+srv://eu.example.net');
  await waitForClear('f-retire-d1-uri');
  // The same name twice: the form says the file can hold only one.
  await page.click('#add-deployment');
  await page.fill('#f-retire-d2-name', 'orders');
  await waitForCode('f-retire-d2-name', 'GUIDE-002');
  await page.click('#f-retire-d2-remove');
  await page.waitForFunction(() => !document.getElementById('f-retire-d2-name'));
  await page.check('#f-retire-allDeploymentsListed');
  await waitForClear('f-retire-allDeploymentsListed');
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '0', await text('#summary'));
  assert.match(await text('#advanced-state'), /^\(8 set\)$/);
  await outputsSettle();
  const toml = await text('#toml');
  assert.match(toml, /^\[retire\]\nallDeploymentsListed = true\n\n\[retire\.deployments\]\neu-1 = "mongodb\+srv:\/\/eu\.example\.net"\norders = "env:ORDERS_MONGODB_URI"$/m);
  await page.screenshot({ path: join(artifacts, 'guide-advanced-retire.png'), fullPage: true });
  // `keyshift check` reads the same: the reminder is gone.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-toml')]);
  const dir = mkdtempSync(join(tmpdir(), 'keyshift-guide-retire-'));
  const file = join(dir, 'keyshift.toml');
  await download.saveAs(file);
  assert.equal(readFileSync(file, 'utf8'), toml);
  writeFileSync(join(dir, 'master-key.txt'), randomBytes(96), { mode: 0o600 });
  const r = spawnSync(keyshiftBinary(), ['check', '-c', file, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  const codes = JSON.stringify(JSON.parse(r.stdout)).match(/KS-[A-Z]+-\d{3}/g) ?? [];
  assert.deepEqual([...new Set(codes)], ['KS-LOC-002'], r.stdout);
  // Unchecked, the confirmation is left out of the file again.
  await page.uncheck('#f-retire-allDeploymentsListed');
  await outputsSettle();
  assert.doesNotMatch(await text('#toml'), /allDeploymentsListed/);
  await page.check('#f-retire-allDeploymentsListed');
});

test('advanced values survive a reload and open the section; start over clears them', async () => {
  await page.reload();
  await page.waitForSelector('body[data-ready=true]');
  assert.equal(await isOpen(), true);
  assert.equal(await page.inputValue('#f-rewrap-batchSize'), '64');
  assert.equal(await page.inputValue('#f-rewrap-filter'), FILTER);
  assert.equal(await page.inputValue('#f-rotate-collections'), 'app.customers\napp.orders');
  assert.equal(await page.inputValue('#f-retire-d1-name'), 'eu-1');
  assert.equal(await page.inputValue('#f-retire-d0-uri'), 'env:ORDERS_MONGODB_URI');
  assert.equal(await page.isChecked('#f-retire-allDeploymentsListed'), true);
  const stored = JSON.parse(await page.evaluate(() => localStorage.getItem('keyshift-guide-v1')));
  assert.equal(stored.advanced['rewrap.concurrency'], '16');
  assert.equal(stored.advanced['rotate.collections'], 'app.customers\napp.orders');
  await page.click('#reset');
  assert.equal(await isOpen(), false);
  assert.equal(await page.inputValue('#f-rewrap-batchSize'), '');
  assert.equal(await page.inputValue('#f-rotate-collections'), '');
  assert.equal(await page.inputValue('#f-retire-d0-name'), '');
  assert.equal(await page.$('#f-retire-d1-name'), null);
  assert.equal(await page.isChecked('#f-retire-allDeploymentsListed'), false);
  const after = await page.evaluate(() => localStorage.getItem('keyshift-guide-v1'));
  assert.ok(!after.includes('app.orders') && !after.includes('ORDERS_MONGODB_URI'), after);
});

test('a pasted keyshift.toml fills the advanced fields', async () => {
  const toml = [
    '[keyVault]', 'uri = "env:MONGODB_URI"',
    '[kmsProviders.local]', 'key = "file:master-key.txt"', 'exposed = true',
    '[kmsProviders.aws]',
    '[target]', 'provider = "aws"', `masterKey = { region = "us-east-1", key = "${ARN}" }`,
    '[rewrap]', 'batchSize = 128', 'backupDir = "bk"',
    '[rotate]', 'collections = ["shop.customers", "shop.orders"]',
    '[retire]', 'allDeploymentsListed = false', 'deployments = { billing = "env:BILLING_URI", reports = "file:reports-uri.txt" }',
  ].join('\n');
  await page.click('#import summary');
  await page.fill('#import-text', toml);
  await page.click('#import-load');
  await page.waitForFunction(() => /Loaded into the form: local → aws/.test(document.getElementById('import-result').textContent));
  assert.match(await text('#import-result'), /Everything the file holds is in the form/);
  assert.equal(await isOpen(), true);
  assert.equal(await page.inputValue('#f-rewrap-batchSize'), '128');
  assert.equal(await page.inputValue('#f-rewrap-backupDir'), 'bk');
  assert.equal(await page.inputValue('#f-rewrap-concurrency'), '');
  assert.equal(await page.inputValue('#f-rotate-collections'), 'shop.customers\nshop.orders');
  await outputsSettle();
  assert.match(await text('#toml'), /collections = \["shop\.customers", "shop\.orders"\]/);
  assert.equal(await page.$$eval('#plan-steps > li[data-step="rotate"] p.scope code', (c) => c.length), 2);
  // [retire]: every deployment in a row of its own; `false` is kept as written.
  assert.equal(await page.inputValue('#f-retire-d0-name'), 'billing');
  assert.equal(await page.inputValue('#f-retire-d1-uri'), 'file:reports-uri.txt');
  assert.equal(await page.isChecked('#f-retire-allDeploymentsListed'), false);
  assert.match(await text('#toml'), /^\[retire\]\nallDeploymentsListed = false\n\n\[retire\.deployments\]\nbilling = "env:BILLING_URI"\nreports = "file:reports-uri\.txt"$/m);
  await waitForCode('f-retire-allDeploymentsListed', 'KS-RET-002');
});

test('no request leaves the page origin; no errors on the page', async () => {
  const origin = new URL(server.url).origin;
  const foreign = requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith(`blob:${origin}/`));
  assert.deepEqual(foreign, []);
  assert.deepEqual(problems, []);
});
