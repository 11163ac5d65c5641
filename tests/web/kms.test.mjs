// The guide for a move between KMS keys, in real Chromium: the current master key is
// any provider (local, aws, azure, gcp, kmip, named or not), an imported keyshift.toml
// comes back exactly as it was, a literal secret typed anywhere never leaves the page in
// keyshift.toml, and a fresh page does not open with errors for fields nobody has
// reached. Each test gets a fresh browser context (empty localStorage); files the guide
// downloads are checked by the real `keyshift check`. Screenshots go to tests/artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { serve } from './serve.mjs';

const root = fileURLToPath(new URL('../../', import.meta.url));
const dist = join(root, 'web/dist');
const artifacts = join(root, 'tests/artifacts');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';
const GCP = { 'mk-projectId': 'my-project', 'mk-location': 'global', 'mk-keyRing': 'keyshift', 'mk-keyName': 'cmk' };
// Literal secrets (AWS's documented example credentials, a made-up password and key).
const ACCESS_KEY = 'AKIAIOSFODNN7EXAMPLE';
const SECRET_KEY = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const PASSWORD = 'hunter2hunter2';
const PEM = '-----BEGIN PRIVATE KEY----- MIIEvQIBADANBgkqhkiG9w0BAQEFAASC -----END PRIVATE KEY-----';
const LITERALS = [ACCESS_KEY, SECRET_KEY, PASSWORD, 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC', 'BEGIN PRIVATE'];

let server;
let browser;
const problems = [];
const requests = [];

before(async () => {
  assert.ok(existsSync(join(dist, 'index.html')), 'web/dist missing: run `npm run build` first');
  mkdirSync(artifacts, { recursive: true });
  server = await serve(dist);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A page of its own, in a context of its own (nothing stored yet). */
async function freshPage() {
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1100, height: 900 } });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url.replace(/\/$/, '') });
  context.on('request', (r) => requests.push(r.url()));
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(server.url);
  await page.waitForSelector('body[data-ready=true]');
  return page;
}

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

/** `keyshift check --json` on a file: `{status, out, text}`. */
function check(file) {
  const r = spawnSync(keyshiftBinary(), ['check', '-c', file, '--json'], { encoding: 'utf8' });
  let out;
  try {
    out = JSON.parse(r.stdout);
  } catch {
    assert.fail(`keyshift check printed no JSON: ${r.stdout}${r.stderr}`);
  }
  return { status: r.status, out, text: `${r.stdout}${r.stderr}` };
}

async function outputsSettle(page) {
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
}

async function waitForCode(page, listId, code) {
  await page.waitForFunction(
    ([id, c]) => [...document.querySelectorAll(`#${id} li`)].some((li) => li.dataset.code === c),
    [listId, code], { timeout: 5000 },
  );
}

async function waitForClear(page, listId) {
  await page.waitForFunction((id) => document.querySelectorAll(`#${id} li`).length === 0, listId, { timeout: 5000 });
}

/** Every error shown anywhere on the page: `[list id, code]`. */
async function shownErrors(page) {
  return page.$$eval('ul.diag li.error', (lis) => lis.map((li) => [li.parentElement.id, li.dataset.code]));
}

async function downloadToml(page, name) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-toml')]);
  assert.equal(download.suggestedFilename(), 'keyshift.toml');
  const dir = mkdtempSync(join(tmpdir(), `keyshift-guide-${name}-`));
  const file = join(dir, 'keyshift.toml');
  await download.saveAs(file);
  return { dir, file, text: readFileSync(file, 'utf8') };
}

/** The source aws with credentials as references; the target gcp. */
async function fillAwsToGcp(page) {
  await page.selectOption('#f-source-type', 'aws');
  await page.fill('#f-source-aws-cred-accessKeyId', 'env:AWS_ACCESS_KEY_ID');
  await page.fill('#f-source-aws-cred-secretAccessKey', 'env:AWS_SECRET_ACCESS_KEY');
  await page.click('#tab-gcp');
  for (const [f, v] of Object.entries(GCP)) await page.fill(`#f-gcp-${f}`, v);
}

test('a fresh page opens without error diagnostics; a field is judged once reached, everything once output is asked for', async () => {
  const page = await freshPage();
  assert.deepEqual(await shownErrors(page), []);
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '0', await page.textContent('#summary'));
  assert.doesNotMatch(await page.getAttribute('#summary', 'class'), /error/);
  assert.match(await page.textContent('#summary'), /still to fill in/);
  assert.equal(await page.isHidden('#findings'), true);
  assert.equal(await page.$$eval('[aria-invalid=true]', (e) => e.length), 0);
  // The plan's "fix the errors first" waits too: said, not in red.
  await outputsSettle(page);
  const blocker = await page.$('#plan-risks li[data-risk="invalid-config"]');
  if (blocker) assert.match(await blocker.getAttribute('class'), /pending/);
  await page.screenshot({ path: join(artifacts, 'guide-fresh.png'), fullPage: true });
  // Reaching the region field (in, then out) judges it: it is required.
  await page.focus('#f-aws-mk-region');
  await page.focus('#f-aws-mk-key');
  await waitForCode(page, 'f-aws-mk-region-diag', 'KS-CFG-004');
  assert.equal(await page.$$eval('#f-aws-mk-key-diag li', (l) => l.length), 0, 'the key field is not left yet');
  // Typing judges at once.
  await page.fill('#f-aws-mk-region', 'us-east-');
  await waitForCode(page, 'f-aws-mk-region-diag', 'KS-AWS-004');
  await page.fill('#f-aws-mk-region', 'us-east-1');
  await waitForClear(page, 'f-aws-mk-region-diag');
  // Asking for the file shows every finding, the fields not reached included.
  await page.click('#copy-toml');
  await waitForCode(page, 'f-aws-mk-key-diag', 'KS-CFG-004');
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '1');
  await page.context().close();
});

test('KMS to KMS: the guide builds aws → gcp, judged live, and `keyshift check` accepts the file', async () => {
  const page = await freshPage();
  // The source is selectable; a KMS source has its provider's credential fields.
  assert.deepEqual(await page.$$eval('#f-source-type option', (o) => o.map((x) => x.value)), ['local', 'aws', 'azure', 'gcp', 'kmip']);
  await page.click('#tab-gcp');
  await page.selectOption('#f-source-type', 'aws');
  assert.equal(await page.$('#f-source-key'), null, 'no local key field for an AWS source');
  assert.equal(await page.$('#f-source-exposed'), null);
  // Core judges the source's fields as the target's, beside them.
  await page.fill('#f-source-aws-cred-accessKeyId', ACCESS_KEY);
  await waitForCode(page, 'f-source-aws-cred-accessKeyId-diag', 'KS-SEC-001');
  await page.fill('#f-source-aws-cred-accessKeyId', 'env:AWS_ACCESS_KEY_ID');
  await waitForClear(page, 'f-source-aws-cred-accessKeyId-diag');
  // Half the credentials: said once, for the provider, in its own block.
  await waitForCode(page, 'f-source-diag', 'KS-PRV-005');
  await page.fill('#f-source-aws-cred-secretAccessKey', 'env:AWS_SECRET_ACCESS_KEY');
  await waitForClear(page, 'f-source-diag');
  await fillAwsToGcp(page);
  await page.waitForFunction(() => document.getElementById('summary').dataset.pending === '0');
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '0', await page.textContent('#summary'));
  assert.equal(await page.getAttribute('#summary', 'data-warnings'), '0', await page.textContent('#summary'));
  await outputsSettle(page);
  const toml = await page.textContent('#toml');
  assert.match(toml, /^\[kmsProviders\.aws\]\naccessKeyId = "env:AWS_ACCESS_KEY_ID"\nsecretAccessKey = "env:AWS_SECRET_ACCESS_KEY"$/m);
  assert.match(toml, /^\[kmsProviders\.gcp\]$/m);
  assert.match(toml, /^provider = "gcp"$/m);
  assert.doesNotMatch(toml, /local/, 'no local provider was added');
  // What core says about the move: the source key's grant, no local key file to retire.
  assert.ok(await page.$('#policy-sources [data-source="aws"]'), 'the policy names what the move needs on the aws source');
  const plan = await page.textContent('#out-plan');
  assert.doesNotMatch(plan, /master-key\.txt|shred/, plan);
  await page.screenshot({ path: join(artifacts, 'guide-aws-to-gcp.png'), fullPage: true });
  const { file, text } = await downloadToml(page, 'aws-gcp');
  assert.equal(text, toml);
  const r = check(file);
  assert.equal(r.out.errors, 0, r.text);
  assert.equal(r.status, 0, r.text);
  // Reloaded, the page still holds the aws source.
  await page.reload();
  await page.waitForSelector('body[data-ready=true]');
  assert.equal(await page.inputValue('#f-source-type'), 'aws');
  assert.equal(await page.inputValue('#f-source-aws-cred-secretAccessKey'), 'env:AWS_SECRET_ACCESS_KEY');
  await outputsSettle(page);
  assert.equal(await page.textContent('#toml'), toml);
  await page.context().close();
});

test('named providers: aws:legacy → aws:prod; two providers of one name are refused in the form', async () => {
  const page = await freshPage();
  await page.selectOption('#f-source-type', 'aws');
  await page.click('#tab-aws');
  await page.fill('#f-aws-mk-region', 'us-east-1');
  await page.fill('#f-aws-mk-key', ARN);
  // Both `aws`: the file could not hold them; the form says so beside the source's name.
  await waitForCode(page, 'f-source-name-diag', 'GUIDE-001');
  assert.notEqual(await page.getAttribute('#summary', 'data-errors'), '0');
  await page.fill('#f-source-name', 'legacy');
  await waitForClear(page, 'f-source-name-diag');
  // A named provider needs credentials (core's KS-PRV-004, in the source's block).
  await waitForCode(page, 'f-source-diag', 'KS-PRV-004');
  await page.fill('#f-source-aws-cred-accessKeyId', 'env:LEGACY_AWS_ACCESS_KEY_ID');
  await page.fill('#f-source-aws-cred-secretAccessKey', 'env:LEGACY_AWS_SECRET_ACCESS_KEY');
  await waitForClear(page, 'f-source-diag');
  await page.fill('#f-aws-name', 'prod');
  await page.fill('#f-aws-cred-accessKeyId', 'env:PROD_AWS_ACCESS_KEY_ID');
  await page.fill('#f-aws-cred-secretAccessKey', 'env:PROD_AWS_SECRET_ACCESS_KEY');
  // A bad name is flagged beside the source's name field.
  await page.fill('#f-source-name', 'le gacy');
  await waitForCode(page, 'f-source-name-diag', 'KS-PRV-002');
  await page.fill('#f-source-name', 'legacy');
  await waitForClear(page, 'f-source-name-diag');
  await page.waitForFunction(() => document.getElementById('summary').dataset.errors === '0');
  await outputsSettle(page);
  const toml = await page.textContent('#toml');
  assert.match(toml, /^\[kmsProviders\."aws:legacy"\]$/m);
  assert.match(toml, /^\[kmsProviders\."aws:prod"\]$/m);
  assert.match(toml, /^provider = "aws:prod"$/m);
  assert.doesNotMatch(toml, /local/);
  const { file } = await downloadToml(page, 'aws-named');
  const r = check(file);
  assert.equal(r.out.errors, 0, r.text);
  assert.equal(r.status, 0, r.text);
  await page.context().close();
});

test('a second current master key: local and an older KMS key, both written', async () => {
  const page = await freshPage();
  await page.fill('#f-aws-mk-region', 'us-east-1');
  await page.fill('#f-aws-mk-key', ARN);
  await page.click('#add-source');
  assert.equal(await page.evaluate(() => document.activeElement.id), 'f-source2-type');
  await page.selectOption('#f-source2-type', 'gcp');
  await page.fill('#f-source2-gcp-cred-email', 'ks@my-project.iam.gserviceaccount.com');
  await page.fill('#f-source2-gcp-cred-privateKey', 'file:gcp-key.pem');
  await outputsSettle(page);
  const toml = await page.textContent('#toml');
  for (const section of ['[kmsProviders.local]', '[kmsProviders.gcp]', '[kmsProviders.aws]']) assert.ok(toml.includes(section), toml);
  await page.click('#f-source2-remove');
  await outputsSettle(page);
  assert.doesNotMatch(await page.textContent('#toml'), /kmsProviders\.gcp/);
  await page.context().close();
});

test('importing an aws → gcp keyshift.toml keeps exactly what it holds, and says so where it stays', async () => {
  const page = await freshPage();
  const file = [
    '[keyVault]', 'uri = "env:KV_URI"', 'namespace = "enc.keys"',
    '[kmsProviders.aws]', 'accessKeyId = "env:AWS_ACCESS_KEY_ID"', 'secretAccessKey = "env:AWS_SECRET_ACCESS_KEY"', 'sessionToken = "env:AWS_SESSION_TOKEN"',
    '[kmsProviders."gcp:eu"]', 'email = "ks@my-project.iam.gserviceaccount.com"', 'privateKey = "file:gcp.pem"',
    '[tlsOptions.aws]', 'tlsCAFile = "aws-ca.pem"',
    '[target]', 'provider = "gcp:eu"',
    'masterKey = { projectId = "my-project", location = "europe-west1", keyRing = "ring", keyName = "cmk", keyVersion = "3" }',
    '[rewrap]', 'batchSize = 100',
  ].join('\n');
  // What core makes of the file: the guide must give back the same.
  const canonical = await page.evaluate(async (t) => {
    const ks = await import('/pkg/keyshift_wasm.js');
    return ks.toToml(ks.parseToml(t).config);
  }, file);
  await page.click('#import summary');
  await page.fill('#import-text', file);
  await page.click('#import-load');
  await page.waitForFunction(() => /Loaded into the form/.test(document.getElementById('import-result').textContent));
  const said = await page.textContent('#import-result');
  assert.match(said, /aws → gcp:eu/);
  assert.match(said, /Everything the file holds is in the form/);
  assert.equal(await page.getAttribute('#import-result', 'data-dropped'), '0');
  assert.doesNotMatch(await page.textContent('#status'), /Loaded/, 'not a passing toast');
  assert.equal(await page.inputValue('#f-source-type'), 'aws');
  assert.equal(await page.inputValue('#f-source-aws-cred-sessionToken'), 'env:AWS_SESSION_TOKEN');
  assert.equal(await page.inputValue('#f-source-aws-tls-tlsCAFile'), 'aws-ca.pem');
  assert.equal(await page.getAttribute('#tab-gcp', 'aria-selected'), 'true');
  assert.equal(await page.inputValue('#f-gcp-name'), 'eu');
  assert.equal(await page.inputValue('#f-gcp-mk-keyVersion'), '3');
  assert.equal(await page.getAttribute('#summary', 'data-errors'), '0', await page.textContent('#summary'));
  await outputsSettle(page);
  const toml = await page.textContent('#toml');
  assert.equal(toml, canonical);
  assert.doesNotMatch(toml, /local/);
  // The result stays beside the button, whatever happens next.
  await page.fill('#f-rewrap-batchSize', '128');
  assert.match(await page.textContent('#import-result'), /Everything the file holds/);
  // A file with what the form cannot hold says what was left out, and keeps the rest.
  await page.fill('#import-text', [
    '[keyVault]', 'uri = "env:MONGODB_URI"', '[kmsProviders.local]', 'key = "file:k"',
    '[kmsProviders.aws]', '[tlsOptions.local]', 'tlsCAFile = "x.pem"',
    '[target]', 'provider = "aws"', `masterKey = { region = "us-east-1", key = "${ARN}" }`,
  ].join('\n'));
  await page.click('#import-load');
  await page.waitForFunction(() => document.getElementById('import-result').dataset.dropped === '1');
  assert.match(await page.textContent('#import-result'), /tlsOptions\.local/);
  await page.context().close();
});

test('a literal secret never leaves the page: Copy and Download give env: references and say what to export', async () => {
  const page = await freshPage();
  await fillAwsToGcp(page);
  await page.fill('#f-source-uri', `mongodb://admin:${PASSWORD}@db.example.com/`);
  await page.fill('#f-source-aws-cred-accessKeyId', ACCESS_KEY);
  await page.fill('#f-source-aws-cred-secretAccessKey', SECRET_KEY);
  await page.fill('#f-gcp-cred-email', 'ks@my-project.iam.gserviceaccount.com');
  await page.fill('#f-gcp-cred-privateKey', PEM);
  await waitForCode(page, 'f-source-aws-cred-secretAccessKey-diag', 'KS-SEC-001');
  await outputsSettle(page);
  const outputs = await page.textContent('#get');
  for (const s of LITERALS) assert.ok(!outputs.includes(s), `${s} shown in the outputs`);
  assert.doesNotMatch(outputs, /holds no secrets/);
  // The notice says which variables to export.
  assert.equal(await page.isVisible('#toml-secrets'), true);
  const variables = await page.$$eval('#toml-secrets-list li', (l) => l.map((x) => x.dataset.variable));
  assert.deepEqual(variables.sort(), ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'GCP_PRIVATE_KEY', 'MONGODB_URI']);
  assert.match(await page.textContent('#toml-secrets'), /export AWS_SECRET_ACCESS_KEY=/);
  await page.screenshot({ path: join(artifacts, 'guide-literal-secrets.png'), fullPage: true });

  await page.click('#copy-toml');
  await page.waitForFunction(() => /Copied keyshift\.toml/.test(document.getElementById('status').textContent));
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  for (const s of LITERALS) assert.ok(!copied.includes(s), `${s} copied`);
  assert.match(copied, /^secretAccessKey = "env:AWS_SECRET_ACCESS_KEY"$/m);
  assert.match(copied, /^uri = "env:MONGODB_URI"$/m);
  assert.match(await page.textContent('#status'), /export .*AWS_SECRET_ACCESS_KEY/);
  const { file, text } = await downloadToml(page, 'literal');
  for (const s of LITERALS) assert.ok(!text.includes(s), `${s} downloaded`);
  assert.equal(text, copied);
  // The references are valid: the file passes `keyshift check`.
  const r = check(file);
  assert.equal(r.out.errors, 0, r.text);
  // One click puts the references into the form; the literals are gone from it.
  await page.click('#use-references');
  await waitForClear(page, 'f-source-aws-cred-secretAccessKey-diag');
  assert.equal(await page.inputValue('#f-source-aws-cred-secretAccessKey'), 'env:AWS_SECRET_ACCESS_KEY');
  assert.equal(await page.inputValue('#f-gcp-cred-privateKey'), 'env:GCP_PRIVATE_KEY');
  await outputsSettle(page);
  assert.equal(await page.isVisible('#toml-secrets'), false);
  assert.match(await page.textContent('#toml-help'), /never the secrets themselves/);

  // A secret where no secret belongs (an access key id as the service account email):
  // the file is held back, with the reason, and neither Copy nor Download hands it out.
  await page.fill('#f-gcp-cred-email', ACCESS_KEY);
  await outputsSettle(page);
  assert.match(await page.textContent('#toml-help'), /Not handed out: .*Service account email.*AWS access key id/);
  assert.ok(!(await page.textContent('#get')).includes(ACCESS_KEY));
  await page.evaluate(() => navigator.clipboard.writeText('clipboard before'));
  await page.click('#copy-toml');
  await page.waitForFunction(() => /Not copied/.test(document.getElementById('status').textContent));
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), 'clipboard before');
  const none = await Promise.race([
    page.waitForEvent('download', { timeout: 2000 }).then(() => 'downloaded', () => 'none'),
    page.click('#download-toml').then(() => new Promise(() => {})),
  ]);
  assert.equal(none, 'none');
  assert.match(await page.textContent('#status'), /Not downloaded: .*looks like a secret/);
  await page.context().close();
});

test('no request leaves the page origin; no errors on the page', async () => {
  const origin = new URL(server.url).origin;
  const foreign = requests.filter((u) => !u.startsWith(origin + '/') && !u.startsWith(`blob:${origin}/`));
  assert.deepEqual(foreign, []);
  assert.deepEqual(problems, []);
});
