// The wasm API, called as the page calls it: the form's state → model.js's toConfig →
// validate / generate / policy / plan / toToml; and parseToml for a pasted file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../../web/dist/', import.meta.url));
const ks = await import(`${dist}pkg/keyshift_wasm.js`);
ks.initSync({ module: readFileSync(`${dist}pkg/keyshift_wasm_bg.wasm`) });
const model = await import(`${dist}model.js`);

const ARN = 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab';

function awsState(mk = {}) {
  const s = model.defaultState();
  s.p.aws['mk.region'] = mk.region ?? 'us-east-1';
  s.p.aws['mk.key'] = mk.key ?? ARN;
  return s;
}

const codes = (r) => r.diagnostics.map((d) => d.code);

test('a complete AWS state validates clean, with plain objects out', () => {
  const r = ks.validate(model.toConfig(awsState()));
  assert.deepEqual(r.diagnostics, []);
  assert.equal(Object.getPrototypeOf(r.config), Object.prototype, 'plain object, not Map');
  assert.equal(Object.getPrototypeOf(r.config.kmsProviders), Object.prototype);
  assert.equal(r.config.target.provider, 'aws');
  assert.equal(r.config.target.masterKey.key, ARN);
});

test('diagnostics carry the CLI codes, paths, messages and hints', () => {
  const r = ks.validate(model.toConfig(awsState({ region: 'us-west-2' })));
  const d = r.diagnostics.find((x) => x.code === 'KS-AWS-005');
  assert.ok(d, JSON.stringify(r.diagnostics));
  assert.equal(d.severity, 'error');
  assert.ok(d.path.startsWith('/target/masterKey/'));
  assert.ok(d.message.length > 0 && d.hint.length > 0);
  const s = awsState();
  assert.equal(model.fieldPath(s, model.PROVIDERS.aws.fields[0]), '/target/masterKey/region');
});

test('a missing required field is reported at the path of its form field', () => {
  const s = awsState({ region: '' });
  const r = ks.validate(model.toConfig(s));
  const region = model.PROVIDERS.aws.fields.find((f) => f.key === 'region');
  const d = r.diagnostics.find((x) => x.code === 'KS-CFG-004');
  assert.equal(d.path, model.fieldPath(s, region));
});

test('a literal secret is an error; a reference is fine', () => {
  const s = awsState();
  s.p.aws['cred.accessKeyId'] = 'AKIAABCDEFGHIJKLMNOP';
  s.p.aws['cred.secretAccessKey'] = 'env:AWS_SECRET_ACCESS_KEY';
  assert.ok(codes(ks.validate(model.toConfig(s))).includes('KS-SEC-001'));
  s.p.aws['cred.accessKeyId'] = 'env:AWS_ACCESS_KEY_ID';
  assert.deepEqual(ks.validate(model.toConfig(s)).diagnostics, []);
});

test('named providers: paths use the name; a bad name is flagged', () => {
  const s = awsState();
  s.name = 'prod';
  assert.ok(codes(ks.validate(model.toConfig(s))).includes('KS-PRV-004'), 'named needs credentials');
  s.p.aws['cred.accessKeyId'] = 'env:AWS_ACCESS_KEY_ID';
  s.p.aws['cred.secretAccessKey'] = 'env:AWS_SECRET_ACCESS_KEY';
  const r = ks.validate(model.toConfig(s));
  assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), []);
  assert.ok('aws:prod' in r.config.kmsProviders);
  s.name = 'pr od';
  assert.ok(codes(ks.validate(model.toConfig(s))).includes('KS-PRV-002'));
});

test('every provider tab has a field that core flags and that clears when fixed', () => {
  const cases = {
    aws: ['mk.key', 'not-an-arn', ARN],
    azure: ['mk.keyVersion', 'xyz', '0123456789abcdef0123456789abcdef'],
    gcp: ['mk.location', 'Not A Location!', 'global'],
    kmip: ['cred.endpoint', 'kmip.example.com:notaport', 'kmip.example.com:5696'],
  };
  for (const [tab, [id, bad, good]] of Object.entries(cases)) {
    const s = model.defaultState();
    s.tab = tab;
    s.p.azure['mk.keyVaultEndpoint'] = 'myvault.vault.azure.net';
    s.p.azure['mk.keyName'] = 'cmk';
    Object.assign(s.p.gcp, { 'mk.projectId': 'my-project', 'mk.keyRing': 'ring', 'mk.keyName': 'cmk' });
    Object.assign(s.p.kmip, { 'tls.tlsCertificateKeyFile': 'client.pem', 'mk.keyId': '1' });
    s.p.aws['mk.region'] = 'us-east-1';
    const f = model.PROVIDERS[tab].fields.find((x) => model.fieldId(x) === id);
    s.p[tab][id] = bad;
    const path = model.fieldPath(s, f);
    const badR = ks.validate(model.toConfig(s));
    assert.ok(badR.diagnostics.some((d) => d.path === path), `${tab}: ${JSON.stringify(badR.diagnostics)}`);
    s.p[tab][id] = good;
    const goodR = ks.validate(model.toConfig(s));
    assert.ok(!goodR.diagnostics.some((d) => d.path === path), `${tab}: ${JSON.stringify(goodR.diagnostics)}`);
  }
});

test('generate: seven languages, two stages, code follows the input', () => {
  const config = model.toConfig(awsState());
  for (const lang of model.LANGS) {
    for (const stage of model.STAGES) {
      const s = ks.generate(config, lang, stage);
      assert.equal(s.lang, lang);
      assert.equal(s.stage, stage);
      assert.ok(s.filename && s.code.includes(ARN), `${lang}/${stage}`);
    }
  }
  const t = ks.generate(config, 'python', 'transition').code;
  const f = ks.generate(config, 'python', 'final').code;
  assert.notEqual(t, f);
  assert.ok(t.includes('local'));
  assert.deepEqual(ks.languages(), model.LANGS);
  assert.throws(() => ks.generate(config, 'cobol', 'final'), /unknown language/);
  assert.throws(() => ks.generate({ keyVault: {}, kmsProviders: {} }, 'python', 'final'), /target/);
});

test('policy and plan follow the target', () => {
  const pol = ks.policy(model.toConfig(awsState()));
  assert.equal(pol.provider, 'aws');
  assert.ok(pol.document.includes(ARN));
  assert.ok(Array.isArray(pol.grant) && Array.isArray(pol.createKey));
  const s = model.defaultState();
  s.tab = 'gcp';
  Object.assign(s.p.gcp, { 'mk.projectId': 'my-project', 'mk.location': 'global', 'mk.keyRing': 'ring', 'mk.keyName': 'cmk' });
  assert.equal(ks.policy(model.toConfig(s)).provider, 'gcp');
  const plan = ks.plan(model.toConfig(awsState()));
  assert.equal(plan.mode, 'rewrap');
  assert.ok(plan.steps.length > 0 && plan.steps.some((st) => st.commands.some((c) => c.includes('keyshift'))));
  const exposed = awsState();
  exposed.sources[0].p.local['cred.exposed'] = true;
  assert.equal(ks.plan(model.toConfig(exposed)).mode, 'rotate');
});

test('toToml round-trips through parseToml and validate(TOML text)', () => {
  const s = awsState();
  s.name = 'prod';
  s.p.aws['cred.accessKeyId'] = 'env:AWS_ACCESS_KEY_ID';
  s.p.aws['cred.secretAccessKey'] = 'env:AWS_SECRET_ACCESS_KEY';
  s.p.aws['tls.tlsCAFile'] = 'ca.pem';
  const text = ks.toToml(model.toConfig(s));
  assert.match(text, /\[kmsProviders\."aws:prod"\]|\[kmsProviders\.'aws:prod'\]/);
  const back = ks.parseToml(text);
  assert.deepEqual(back.diagnostics, []);
  assert.deepEqual(back.config, ks.validate(model.toConfig(s)).config);
  assert.deepEqual(ks.validate(text).config, back.config);
  assert.equal(ks.parseToml('[keyVault\n').diagnostics[0].code, 'KS-CFG-001');
  assert.equal(ks.validate(JSON.stringify(model.toConfig(s))).config.target.provider, 'aws:prod');
});

test('nothing that looks like a literal secret is persisted', () => {
  const s = awsState();
  s.keyVault.uri = 'mongodb://admin:hunter2@db.example.com';
  s.sources[0].p.local['cred.key'] = 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0';
  s.p.aws['cred.accessKeyId'] = 'AKIAABCDEFGHIJKLMNOP';
  s.p.aws['cred.secretAccessKey'] = 'env:AWS_SECRET_ACCESS_KEY';
  s.p.aws['mk.endpoint'] = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEYXX';
  s.p.gcp['cred.email'] = '-----BEGIN PRIVATE KEY-----';
  const stored = JSON.stringify(model.persistable(s));
  for (const secret of ['hunter2', 'c2VjcmV0', 'AKIA', 'wJalr', 'BEGIN']) {
    assert.ok(!stored.includes(secret), `${secret} persisted: ${stored}`);
  }
  const back = model.restore(JSON.parse(stored));
  assert.equal(back.p.aws['cred.secretAccessKey'], 'env:AWS_SECRET_ACCESS_KEY');
  assert.equal(back.p.aws['mk.key'], ARN);
  assert.equal(back.keyVault.uri, 'env:MONGODB_URI');
  assert.equal(back.sources[0].p.local['cred.key'], 'file:master-key.txt');
  assert.deepEqual(model.restore({ v: 1, tab: '<script>', lang: 42 }).tab, 'aws');
});

test('core never echoes a literal secret in a diagnostic', () => {
  const s = awsState();
  s.p.aws['cred.accessKeyId'] = 'AKIAABCDEFGHIJKLMNOP';
  s.p.aws['cred.secretAccessKey'] = 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY';
  const r = ks.validate(model.toConfig(s));
  const text = JSON.stringify(r.diagnostics);
  assert.ok(!text.includes('AKIAABCDEFGHIJKLMNOP') && !text.includes('wJalr'));
});

test('a pasted keyshift.toml loads into the form state and prints back the same', () => {
  const states = [];
  const aws = awsState();
  aws.name = 'prod';
  aws.p.aws['cred.accessKeyId'] = 'env:AWS_ACCESS_KEY_ID';
  aws.p.aws['cred.secretAccessKey'] = 'env:AWS_SECRET_ACCESS_KEY';
  aws.p.aws['tls.tlsCAFile'] = 'ca.pem';
  aws.sources[0].p.local['cred.exposed'] = true;
  states.push(aws);
  const kmip = model.defaultState();
  kmip.tab = 'kmip';
  Object.assign(kmip.p.kmip, { 'cred.endpoint': 'kmip:5696', 'tls.tlsCertificateKeyFile': 'c.pem', 'mk.keyId': '7', 'mk.delegated': true });
  states.push(kmip);
  const advanced = awsState();
  advanced.sources[0].p.local['cred.exposed'] = true;
  Object.assign(advanced.advanced, {
    'rewrap.filter': '{"masterKey.provider": "local"}', 'rewrap.batchSize': '64', 'rewrap.concurrency': '8',
    'rewrap.backupDir': 'bk', 'rotate.collections': 'app.customers\napp.orders',
  });
  states.push(advanced);
  for (const s of states) {
    const text = ks.toToml(model.toConfig(s));
    const parsed = ks.parseToml(text);
    const { state, dropped } = model.fromConfig(parsed.config);
    assert.deepEqual(dropped, []);
    assert.equal(ks.toToml(model.toConfig(state)), text);
  }
  // Two current master keys (local and gcp): both kept, nothing dropped.
  const two = ks.parseToml(
    '[keyVault]\nuri = "env:U"\n[kmsProviders.local]\nkey = "file:k"\n[kmsProviders.gcp]\n[kmsProviders.aws]\n' +
    '[target]\nprovider = "aws"\nmasterKey = { region = "us-east-1", key = "' + ARN + '" }\n[rewrap]\nbatchSize = 10\n').config;
  const { state: both, dropped } = model.fromConfig(two);
  assert.deepEqual(dropped, []);
  assert.deepEqual(both.sources.map(model.sourceName), ['gcp', 'local']);
  assert.equal(ks.toToml(model.toConfig(both)), ks.toToml(two));
});

function advancedState(values) {
  const s = awsState();
  s.sources[0].p.local['cred.exposed'] = true;
  Object.assign(s.advanced, values);
  return s;
}

test('advanced fields: [rewrap] and [rotate] reach the config only when set, numbers as numbers', () => {
  assert.equal(model.toConfig(awsState()).rewrap, undefined);
  assert.equal(model.toConfig(awsState()).rotate, undefined);
  const c = model.toConfig(advancedState({
    'rewrap.batchSize': ' 64 ', 'rewrap.concurrency': '', 'rewrap.backupDir': 'bk',
    'rotate.collections': ' app.customers \n\n app.orders\r\n',
  }));
  assert.deepEqual(c.rewrap, { batchSize: 64, backupDir: 'bk' });
  assert.deepEqual(c.rotate, { collections: ['app.customers', 'app.orders'] });
  assert.equal(model.toConfig(advancedState({ 'rotate.collections': ' \n ' })).rotate, undefined);
  assert.equal(model.toConfig(advancedState({ 'rewrap.batchSize': 'ten' })).rewrap.batchSize, 'ten');
  // The exposed key's warning, and retire's reminder that the deployments are not confirmed.
  assert.deepEqual(ks.validate(c).diagnostics.map((d) => d.code), ['KS-LOC-002', 'KS-RET-002']);
});

test('advanced fields: each diagnostic carries the path the page places beside its field', () => {
  const path = (key) => model.advancedPath(model.ADVANCED_FIELDS.find((f) => model.advancedId(f) === key));
  const cases = [
    ['rewrap.batchSize', '0', 'KS-RW-003'],
    ['rewrap.batchSize', '1.5', 'KS-CFG-003'],
    ['rewrap.concurrency', '257', 'KS-RW-004'],
    ['rewrap.filter', '{bad', 'KS-RW-001'],
    ['rewrap.filter', '[]', 'KS-RW-002'],
  ];
  for (const [key, bad, code] of cases) {
    const r = ks.validate(model.toConfig(advancedState({ [key]: bad })));
    const d = r.diagnostics.find((x) => x.code === code);
    assert.ok(d, `${key}=${bad}: ${JSON.stringify(r.diagnostics)}`);
    assert.equal(d.path, path(key));
  }
  const list = path('rotate.collections');
  assert.equal(list, '/rotate/collections');
  const r = ks.validate(model.toConfig(advancedState({
    'rotate.collections': 'app.ok\nnodot\nconfig.x\nencryption.__keyVault\napp.ok',
  })));
  const rot = r.diagnostics.filter((d) => d.code.startsWith('KS-ROT-')).map((d) => [d.code, d.path]);
  assert.deepEqual(rot, [
    ['KS-ROT-001', `${list}/1`], ['KS-ROT-003', `${list}/2`], ['KS-ROT-002', `${list}/3`], ['KS-ROT-004', `${list}/4`],
  ]);
  const { byPath, rest } = model.placeDiagnostics(r.diagnostics, [list, '/retire/allDeploymentsListed'], [list, '/rotate', '/kmsProviders/local']);
  assert.equal(byPath.get(list).length, 4);
  assert.deepEqual(rest, []);
});

test('advanced fields: the plan scans the listed collections instead of --all-collections', () => {
  const commands = (p, id) => p.steps.find((s) => s.id === id).commands.join('\n');
  const listed = ks.plan(model.toConfig(advancedState({ 'rotate.collections': 'app.customers' })));
  assert.equal(listed.mode, 'rotate');
  assert.doesNotMatch(commands(listed, 'rotate'), /--all-collections/);
  const all = ks.plan(model.toConfig(advancedState({})));
  assert.match(commands(all, 'rotate'), /--all-collections/);
  const bk = ks.plan(model.toConfig(advancedState({ 'rewrap.backupDir': 'vault-backups' })));
  assert.ok(JSON.stringify(bk.rollback).includes('vault-backups/'));
});

test('advanced fields are persisted and restored, never anything that looks like a secret', () => {
  const s = advancedState({ 'rewrap.batchSize': '64', 'rotate.collections': 'app.a\napp.b', 'rewrap.backupDir': 'AKIAABCDEFGHIJKLMNOP' });
  const stored = JSON.stringify(model.persistable(s));
  assert.ok(!stored.includes('AKIA'), stored);
  const back = model.restore(JSON.parse(stored));
  assert.equal(back.advanced['rewrap.batchSize'], '64');
  assert.equal(back.advanced['rotate.collections'], 'app.a\napp.b');
  assert.equal(back.advanced['rewrap.backupDir'], '');
  assert.equal(model.hasAdvanced(back), true);
  assert.equal(model.hasAdvanced(model.restore({ v: 1, advanced: { 'rewrap.batchSize': 7 } })), false, 'strings only');
  // A state stored before the section existed restores with it empty.
  assert.equal(model.restore({ v: 1, tab: 'gcp' }).advanced['rotate.collections'], '');
  const empty = model.fromConfig(ks.parseToml(
    '[keyVault]\nuri = "env:U"\n[kmsProviders.local]\nkey = "file:k"\n[kmsProviders.aws]\n' +
    '[target]\nprovider = "aws"\nmasterKey = { region = "us-east-1", key = "' + ARN + '" }\n[rotate]\ncollections = []\n').config);
  assert.equal(empty.dropped.length, 1);
  assert.match(empty.dropped[0], /empty \[rotate\] collections/);
});

/** A state whose current master key is `type` (named `name`), target gcp. */
function kmsState(type, name = '', values = {}) {
  const s = model.defaultState();
  s.sources = [model.newSource(type)];
  s.sources[0].name = name;
  Object.assign(s.sources[0].p[type], values);
  s.tab = 'gcp';
  Object.assign(s.p.gcp, { 'mk.projectId': 'my-project', 'mk.location': 'global', 'mk.keyRing': 'ring', 'mk.keyName': 'cmk' });
  return s;
}

test('KMS to KMS: every source type becomes its own kmsProviders entry, judged by core, and nothing else', () => {
  const cases = [
    ['aws', '', { 'cred.accessKeyId': 'env:A', 'cred.secretAccessKey': 'env:B', 'tls.tlsCAFile': 'aws-ca.pem' }],
    ['azure', 'old', { 'cred.tenantId': '00000000-0000-0000-0000-000000000001', 'cred.clientId': '00000000-0000-0000-0000-000000000002', 'cred.clientSecret': 'env:AZ' }],
    ['gcp', 'legacy', { 'cred.email': 'a@p.iam.gserviceaccount.com', 'cred.privateKey': 'file:k.pem' }],
    ['kmip', '', { 'cred.endpoint': 'kmip.example.com:5696', 'tls.tlsCertificateKeyFile': 'client.pem' }],
    ['local', 'old', { 'cred.key': 'file:old-key.txt' }],
  ];
  for (const [type, name, values] of cases) {
    const s = kmsState(type, name, values);
    const c = model.toConfig(s);
    const source = name ? `${type}:${name}` : type;
    assert.deepEqual(Object.keys(c.kmsProviders).sort(), [source, 'gcp'].sort(), type);
    const r = ks.validate(c);
    assert.deepEqual(r.diagnostics.filter((d) => d.severity === 'error'), [], `${type}: ${JSON.stringify(r.diagnostics)}`);
    // Round trip through keyshift.toml: the same state comes back.
    const text = ks.toToml(c);
    const { state, dropped } = model.fromConfig(ks.parseToml(text).config);
    assert.deepEqual(dropped, [], type);
    assert.equal(state.sources[0].type, type);
    assert.equal(state.sources[0].name, name);
    assert.equal(ks.toToml(model.toConfig(state)), text, type);
  }
  // A field of a source is reported at the path the page places beside it.
  const s = kmsState('aws', 'legacy', { 'cred.accessKeyId': 'AKIAABCDEFGHIJKLMNOP', 'cred.secretAccessKey': 'env:B' });
  const f = model.SOURCE_PROVIDERS.aws.fields.find((x) => x.key === 'accessKeyId');
  const path = model.sourceFieldPath(s.sources[0], f);
  assert.equal(path, '/kmsProviders/aws:legacy/accessKeyId');
  assert.ok(ks.validate(model.toConfig(s)).diagnostics.some((d) => d.code === 'KS-SEC-001' && d.path === path));
});

test('the form refuses two providers of one name, and two deployments of one name', () => {
  const s = kmsState('gcp');
  assert.deepEqual(model.formDiagnostics(s).map((d) => [d.code, d.path]), [['GUIDE-001', '#source/0/name']]);
  assert.deepEqual(Object.keys(model.toConfig(s).kmsProviders), ['gcp'], 'the clashing source is not written');
  s.sources[0].name = 'legacy';
  assert.deepEqual(model.formDiagnostics(s), []);
  s.retire.deployments = [{ name: 'a', uri: 'env:A' }, { name: '', uri: '' }, { name: 'a', uri: 'env:B' }];
  assert.deepEqual(model.formDiagnostics(s).map((d) => [d.code, d.path]), [['GUIDE-002', '#retire/2/name']]);
  assert.deepEqual(model.toConfig(s).retire, { deployments: { a: 'env:A' } });
});

test('secretFree: literal secrets become env: references the user is told to export; the input is untouched', () => {
  const s = kmsState('aws', 'legacy', { 'cred.accessKeyId': 'AKIAABCDEFGHIJKLMNOP', 'cred.secretAccessKey': 'wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY' });
  s.keyVault.uri = 'mongodb://admin:hunter2@db.example.com';
  s.p.gcp['cred.email'] = 'a@p.iam.gserviceaccount.com';
  s.p.gcp['cred.privateKey'] = 'env:GCP_PRIVATE_KEY';
  s.retire.deployments = [{ name: 'eu-1', uri: 'mongodb://u:pw@eu.example.net' }, { name: 'x', uri: 'eu.example.net' }];
  const config = model.toConfig(s);
  const before = JSON.stringify(config);
  const { config: safe, moved, withheld } = model.secretFree(config, ks.validate(config).diagnostics);
  assert.equal(JSON.stringify(config), before);
  assert.deepEqual(withheld, []);
  assert.deepEqual(moved.map((m) => [m.path, m.variable]).sort(), [
    ['/keyVault/uri', 'MONGODB_URI'],
    ['/kmsProviders/aws:legacy/accessKeyId', 'AWS_LEGACY_ACCESS_KEY_ID'],
    ['/kmsProviders/aws:legacy/secretAccessKey', 'AWS_LEGACY_SECRET_ACCESS_KEY'],
    ['/retire/deployments/eu-1', 'EU_1_MONGODB_URI'],
    ['/retire/deployments/x', 'X_MONGODB_URI'],
  ]);
  const text = ks.toToml(safe);
  for (const secret of ['AKIA', 'wJalr', 'hunter2', ':pw@']) assert.ok(!text.includes(secret), `${secret} in ${text}`);
  assert.deepEqual(ks.validate(safe).diagnostics.filter((d) => d.severity === 'error'), []);
  // A variable already in use is not reused for another secret.
  const t = kmsState('gcp', 'old', { 'cred.email': 'a@p.iam.gserviceaccount.com', 'cred.privateKey': 'not a reference' });
  t.p.gcp['cred.email'] = 'b@p.iam.gserviceaccount.com';
  t.p.gcp['cred.privateKey'] = 'env:GCP_OLD_PRIVATE_KEY';
  const tc = model.toConfig(t);
  assert.deepEqual(model.secretFree(tc, ks.validate(tc).diagnostics).moved.map((m) => m.variable), ['GCP_OLD_PRIVATE_KEY_2']);
  // A secret outside the secret fields is withheld, never handed on.
  const w = kmsState('local');
  w.sources[0].name = 'old';
  w.p.gcp['mk.keyRing'] = '-----BEGIN PRIVATE KEY-----';
  const wc = model.toConfig(w);
  const out = model.secretFree(wc, ks.validate(wc).diagnostics);
  assert.deepEqual(out.withheld, [{ path: '/target/masterKey/keyRing', why: 'a PEM block (a private key or certificate)' }]);
  assert.ok(!JSON.stringify(out.config).includes('BEGIN'));
  // A long key name is not a secret.
  assert.equal(model.unmistakableSecret('projects-keyshift-customer-master-key-2024-rotation'), null);
});

test('stored state: the first version (one local key) restores; KMS sources and [retire] persist without secrets', () => {
  const v1 = model.restore({ v: 1, tab: 'gcp', source: { uri: 'env:KV', key: 'file:old.txt', exposed: true }, p: { kmip: { 'mk.delegated': false } } });
  assert.equal(v1.keyVault.uri, 'env:KV');
  assert.equal(v1.sources.length, 1);
  assert.equal(v1.sources[0].p.local['cred.key'], 'file:old.txt');
  assert.equal(model.anyExposed(v1), true);
  assert.equal(v1.p.kmip['mk.delegated'], '', 'an unticked box stays unset');
  const s = kmsState('aws', 'legacy', { 'cred.accessKeyId': 'AKIAABCDEFGHIJKLMNOP', 'cred.secretAccessKey': 'env:B' });
  s.retire = { deployments: [{ name: 'eu', uri: 'mongodb://u:pw@h' }, { name: 'us', uri: 'env:US_URI' }], listed: true };
  const stored = JSON.stringify(model.persistable(s));
  for (const secret of ['AKIA', 'pw@']) assert.ok(!stored.includes(secret), stored);
  const back = model.restore(JSON.parse(stored));
  assert.equal(back.sources[0].type, 'aws');
  assert.equal(back.sources[0].name, 'legacy');
  assert.equal(back.sources[0].p.aws['cred.secretAccessKey'], 'env:B');
  assert.deepEqual(back.retire, { deployments: [{ name: 'eu', uri: '' }, { name: 'us', uri: 'env:US_URI' }], listed: true });
  assert.deepEqual(model.restore({ v: 2, sources: [{ type: '<img>' }, null, 'x'] }).sources, []);
});

test('[retire]: rows and the confirmation reach the config as core reads them', () => {
  const s = awsState();
  s.retire = { deployments: [{ name: ' orders ', uri: ' env:ORDERS_URI ' }, { name: '', uri: '' }], listed: '' };
  assert.deepEqual(model.toConfig(s).retire, { deployments: { orders: 'env:ORDERS_URI' } });
  s.retire.listed = true;
  const c = model.toConfig(s);
  assert.deepEqual(c.retire, { deployments: { orders: 'env:ORDERS_URI' }, allDeploymentsListed: true });
  assert.deepEqual(ks.validate(c).config.retire, c.retire);
  s.retire.deployments = [{ name: 'orders', uri: '' }];
  const empty = ks.validate(model.toConfig(s)).diagnostics.find((d) => d.path === model.deploymentPath('orders'));
  assert.equal(empty?.code, 'KS-CFG-005');
  assert.equal(model.toConfig(model.defaultState()).retire, undefined);
});

test('advanced fields: [audit] reaches the config only when set, core judges its collection beside the field, and it round-trips', () => {
  assert.equal(model.toConfig(awsState()).audit, undefined);
  const c = model.toConfig(advancedState({ 'audit.file': ' logs/audit.jsonl ', 'audit.collection': 'keyshift.audit' }));
  assert.deepEqual(c.audit, { file: 'logs/audit.jsonl', collection: 'keyshift.audit' });
  assert.deepEqual(ks.validate(c).diagnostics.filter((d) => d.code.startsWith('KS-AUD-')), []);
  const path = model.advancedPath(model.ADVANCED_FIELDS.find((f) => model.advancedId(f) === 'audit.collection'));
  assert.equal(path, '/audit/collection');
  const kv = model.toConfig(advancedState({ 'audit.collection': c.keyVault.namespace }));
  const d = ks.validate(kv).diagnostics.find((x) => x.code === 'KS-AUD-002');
  assert.ok(d, JSON.stringify(ks.validate(kv).diagnostics));
  assert.equal(d.path, path);
  assert.equal(ks.validate(model.toConfig(advancedState({ 'audit.collection': 'nodot' }))).diagnostics.find((x) => x.code === 'KS-AUD-001').path, path);
  const text = ks.toToml(c);
  assert.match(text, /^\[audit\]\nfile = "logs\/audit\.jsonl"\ncollection = "keyshift\.audit"$/m);
  const { state, dropped } = model.fromConfig(ks.parseToml(text).config);
  assert.deepEqual(dropped, []);
  assert.equal(ks.toToml(model.toConfig(state)), text);
});
