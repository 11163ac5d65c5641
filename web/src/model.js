// The guide's model: what the form holds, how it becomes a keyshift.toml-shaped
// object, where each diagnostic belongs, and what may be remembered across reloads.
// Pure functions only (no DOM, no wasm), so node tests exercise them as the page does.

/** Provider tabs (the target), in MongoDB's own order. Each field: where it lives in
 * the config (`cred` → kmsProviders.NAME, `tls` → tlsOptions.NAME, `mk` →
 * target.masterKey), its label, short help, a placeholder, and whether it holds a
 * secret reference. The same credential and TLS fields serve a current (source) key. */
export const PROVIDERS = {
  aws: {
    label: 'AWS',
    title: 'AWS KMS',
    intro:
      'Leave the credentials empty to use the AWS credential chain (environment, profile, web identity, ECS, instance metadata) on a server running in AWS.',
    fields: [
      { at: 'mk', key: 'region', label: 'Region', placeholder: 'us-east-1', help: 'The region of the KMS key.' },
      {
        at: 'mk', key: 'key', label: 'Key ARN',
        placeholder: 'arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab',
        help: 'The full key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID), not an alias or a bare id.',
      },
      { at: 'mk', key: 'endpoint', label: 'Custom KMS endpoint (optional)', placeholder: 'kms.us-east-1.amazonaws.com', help: 'host[:port], e.g. a VPC endpoint.' },
      { at: 'cred', key: 'accessKeyId', label: 'Access key ID (optional)', secret: true, placeholder: 'env:AWS_ACCESS_KEY_ID', help: 'A reference: env:NAME or file:PATH. Never the key itself.' },
      { at: 'cred', key: 'secretAccessKey', label: 'Secret access key (optional)', secret: true, placeholder: 'env:AWS_SECRET_ACCESS_KEY', help: 'A reference: env:NAME or file:PATH.' },
      { at: 'cred', key: 'sessionToken', label: 'Session token (optional)', secret: true, placeholder: 'env:AWS_SESSION_TOKEN', help: 'For temporary credentials only.' },
      { at: 'tls', key: 'tlsCAFile', label: 'CA file for KMS TLS (optional)', placeholder: 'ca.pem', help: 'PEM bundle to trust for this provider.' },
    ],
  },
  azure: {
    label: 'Azure',
    title: 'Azure Key Vault',
    intro: 'Leave the credentials empty to use the managed identity of a server running in Azure.',
    fields: [
      { at: 'mk', key: 'keyVaultEndpoint', label: 'Key vault endpoint', placeholder: 'myvault.vault.azure.net', help: 'The vault host (or its https URL).' },
      { at: 'mk', key: 'keyName', label: 'Key name', placeholder: 'keyshift-cmk', help: '1–127 letters, digits and -. An RSA key.' },
      { at: 'mk', key: 'keyVersion', label: 'Key version (optional)', placeholder: '32 hex digits', help: 'Leave empty for the current version.' },
      { at: 'cred', key: 'tenantId', label: 'Tenant ID (optional)', placeholder: '00000000-0000-0000-0000-000000000000', help: 'Directory (tenant) GUID.' },
      { at: 'cred', key: 'clientId', label: 'Client ID (optional)', placeholder: '00000000-0000-0000-0000-000000000000', help: 'Application (client) GUID.' },
      { at: 'cred', key: 'clientSecret', label: 'Client secret (optional)', secret: true, placeholder: 'env:AZURE_CLIENT_SECRET', help: 'A reference: env:NAME or file:PATH.' },
      { at: 'cred', key: 'identityPlatformEndpoint', label: 'Identity platform endpoint (optional)', placeholder: 'login.microsoftonline.com', help: 'host[:port].' },
      { at: 'tls', key: 'tlsCAFile', label: 'CA file for KMS TLS (optional)', placeholder: 'ca.pem', help: 'PEM bundle to trust for this provider.' },
    ],
  },
  gcp: {
    label: 'GCP',
    title: 'Google Cloud KMS',
    intro: 'Leave the credentials empty to use the service account attached to a server running in Google Cloud.',
    fields: [
      { at: 'mk', key: 'projectId', label: 'Project ID', placeholder: 'my-project', help: '6–30 lowercase letters, digits and -.' },
      { at: 'mk', key: 'location', label: 'Location', placeholder: 'global', help: 'global or a region such as us-east1.' },
      { at: 'mk', key: 'keyRing', label: 'Key ring', placeholder: 'keyshift', help: 'Letters, digits, _ and -.' },
      { at: 'mk', key: 'keyName', label: 'Key name', placeholder: 'keyshift-cmk', help: 'Letters, digits, _ and -.' },
      { at: 'mk', key: 'keyVersion', label: 'Key version (optional)', placeholder: '1', help: 'Leave empty for the primary version.' },
      { at: 'mk', key: 'endpoint', label: 'Custom Cloud KMS endpoint (optional)', placeholder: 'cloudkms.googleapis.com', help: 'host[:port].' },
      { at: 'cred', key: 'email', label: 'Service account email (optional)', placeholder: 'keyshift@my-project.iam.gserviceaccount.com', help: 'With the private key below.' },
      { at: 'cred', key: 'privateKey', label: 'Private key (optional)', secret: true, placeholder: 'file:gcp-key.pem', help: 'A reference: env:NAME or file:PATH.' },
      { at: 'cred', key: 'endpoint', label: 'OAuth endpoint (optional)', placeholder: 'oauth2.googleapis.com', help: 'host[:port].' },
      { at: 'tls', key: 'tlsCAFile', label: 'CA file for KMS TLS (optional)', placeholder: 'ca.pem', help: 'PEM bundle to trust for this provider.' },
    ],
  },
  kmip: {
    label: 'KMIP',
    title: 'KMIP server',
    intro: 'keyshift authenticates to the KMIP server with a TLS client certificate.',
    fields: [
      { at: 'cred', key: 'endpoint', label: 'KMIP server', placeholder: 'kmip.example.com:5696', help: 'host:port.' },
      { at: 'tls', key: 'tlsCertificateKeyFile', label: 'Client certificate and key file', placeholder: 'client.pem', help: 'PEM with the certificate and its private key.' },
      { at: 'tls', key: 'tlsCertificateKeyFilePassword', label: 'Client key password (optional)', secret: true, placeholder: 'env:KMIP_KEY_PASSWORD', help: 'A reference: env:NAME or file:PATH.' },
      { at: 'tls', key: 'tlsCAFile', label: 'CA file (optional)', placeholder: 'kmip-ca.pem', help: 'PEM bundle that signed the server certificate.' },
      { at: 'mk', key: 'keyId', label: 'Key ID', placeholder: '1', help: "The managed object's Unique Identifier. Empty: a new object per DEK." },
      { at: 'mk', key: 'delegated', label: 'Delegated encryption (the server encrypts and decrypts)', kind: 'checkbox', help: 'KMIP 1.2+ Encrypt/Decrypt.' },
      { at: 'mk', key: 'endpoint', label: 'Key endpoint override (optional)', placeholder: 'kmip2.example.com:5696', help: 'host:port, instead of the server above.' },
    ],
  },
};

export const TABS = Object.keys(PROVIDERS);
export const LANGS = ['python', 'node', 'java', 'go', 'csharp', 'rust', 'mongosh'];
export const LANG_LABELS = {
  python: 'Python', node: 'Node.js', java: 'Java', go: 'Go', csharp: 'C#', rust: 'Rust', mongosh: 'mongosh',
};
export const STAGES = ['transition', 'final'];

/** The key vault fields at the top of "where you are now". */
export const KEY_VAULT_FIELDS = [
  { key: 'uri', label: 'Connection string', secret: true, placeholder: 'env:MONGODB_URI', help: 'A reference to the connection string of the cluster holding the key vault: env:NAME or file:PATH.' },
  { key: 'namespace', label: 'Key vault namespace', placeholder: 'encryption.__keyVault', help: 'db.collection of the key vault.' },
];

/** The current ("source") master key: any provider type. Its fields are the provider's
 * credentials and TLS files (a source has no masterKey in keyshift.toml: each key
 * document names its own); a local key has the key reference and `exposed`. */
export const SOURCE_TYPES = ['local', ...TABS];

const credentialFields = (tab) => PROVIDERS[tab].fields.filter((f) => f.at !== 'mk');

export const SOURCE_PROVIDERS = {
  local: {
    label: 'Local key',
    intro: 'The 96-byte local master key your applications use now.',
    fields: [
      { at: 'cred', key: 'key', label: 'Local master key', secret: true, placeholder: 'file:master-key.txt', help: 'Where the application reads the 96-byte local key: file:PATH or env:NAME. Never the key itself.' },
      { at: 'cred', key: 'exposed', kind: 'checkbox', label: 'The local master key may have been exposed', help: 'Then rewrapping is not enough: the plan rotates the data encryption keys and re-encrypts the data.' },
    ],
  },
  aws: {
    label: 'AWS KMS',
    intro: 'keyshift decrypts with the current AWS key (each key document names its ARN). Leave the credentials empty to use the AWS credential chain on a server running in AWS.',
    fields: credentialFields('aws'),
  },
  azure: {
    label: 'Azure Key Vault',
    intro: 'keyshift unwraps with the current Azure key (each key document names it). Leave the credentials empty to use the managed identity of a server running in Azure.',
    fields: credentialFields('azure'),
  },
  gcp: {
    label: 'Google Cloud KMS',
    intro: 'keyshift decrypts with the current Cloud KMS key (each key document names it). Leave the credentials empty to use the service account attached to a server running in Google Cloud.',
    fields: credentialFields('gcp'),
  },
  kmip: {
    label: 'KMIP server',
    intro: 'keyshift reads the current keys from this KMIP server (each key document names its object), authenticating with a TLS client certificate.',
    fields: credentialFields('kmip'),
  },
};

/** At most this many current master keys (a guard for stored data, not a real limit). */
export const MAX_SOURCES = 8;
/** At most this many retire deployments kept from storage. */
export const MAX_DEPLOYMENTS = 32;

/** The "Advanced" fields: the optional `[rewrap]` tuning, `[audit]` and `[rotate]` collections.
 * `kind`: `integer` (sent as a number when it is digits, else as typed so core says
 * why), `list` (one `db.coll` per line, blank lines ignored), else text. `[retire]`
 * has rows of its own (`state.retire`). */
export const ADVANCED_FIELDS = [
  {
    section: 'rewrap', key: 'filter', label: 'Key filter (optional)', placeholder: '{"masterKey.provider": "local"}',
    help: 'Which keys to move (or, for an exposed key, to replace): a MongoDB query on the key vault in extended JSON, keys double-quoted. Empty: every key not already under the target.',
  },
  {
    section: 'rewrap', key: 'batchSize', kind: 'integer', label: 'Batch size (optional)', placeholder: '256',
    help: 'Keys per batch, 1–10000; bounds memory. Empty: 256.',
  },
  {
    section: 'rewrap', key: 'concurrency', kind: 'integer', label: 'Concurrency (optional)', placeholder: '32',
    help: 'KMS requests in flight, 1–256. Empty: 32; raise it for a far-away KMS.',
  },
  {
    section: 'rewrap', key: 'backupDir', label: 'Backup directory (optional)', placeholder: 'keyshift-backups',
    help: 'Where the backup of every key keyshift touches is written, relative to keyshift.toml. Empty: keyshift-backups.',
  },
  {
    section: 'audit', key: 'file', label: 'Audit log file (optional)', placeholder: 'keyshift-backups/audit.jsonl',
    help: 'The hash-chained record of every change keyshift makes to the key vault (docs/audit.md), relative to keyshift.toml. Empty: audit.jsonl in the backup directory.',
  },
  {
    section: 'audit', key: 'collection', label: 'Audit collection (optional)', placeholder: 'keyshift.audit',
    help: 'Also insert every audit record into this db.coll of the key vault\'s deployment (write concern majority): not the key vault itself.',
  },
  {
    section: 'rotate', key: 'collections', kind: 'list', label: 'Collections to rotate (optional)', placeholder: 'app.customers\napp.orders',
    help: 'One db.coll per line: the collections holding encrypted fields, which keyshift rotate re-encrypts and whose $jsonSchema validators it rewrites. Empty: rotate scans every collection (--all-collections).',
  },
];

/** The `[retire]` fields: one row per other deployment, and the confirmation. */
export const RETIRE_FIELDS = {
  name: { key: 'name', label: 'Deployment name', placeholder: 'orders', help: 'Letters, digits, _ and -; after the cluster. The key vault\'s own cluster needs no row.' },
  uri: { key: 'uri', label: 'Connection string', secret: true, placeholder: 'env:ORDERS_MONGODB_URI', help: 'A reference (env:NAME or file:PATH), or a mongodb:// URI without a password.' },
  listed: {
    key: 'allDeploymentsListed', kind: 'checkbox',
    label: 'Every deployment that uses this key vault is listed (allDeploymentsListed)',
    help: 'Your statement that no other cluster\'s data is encrypted with these keys; keyshift retire refuses to delete a key without it.',
  },
};

/** An advanced field's key inside `state.advanced`: `rewrap.batchSize`. */
export function advancedId(f) {
  return `${f.section}.${f.key}`;
}

/** The JSON pointer core reports for an advanced field (entries of a list add `/N`). */
export function advancedPath(f) {
  return `${seg(f.section)}${seg(f.key)}`;
}

/** The JSON pointer of a retire deployment (core reports name and URI problems there). */
export function deploymentPath(name) {
  return `/retire/deployments${seg(name)}`;
}

/** The namespaces in the collections text: one per line, trimmed, blank lines left out. */
export function collectionList(textValue) {
  return typeof textValue === 'string' ? textValue.split(/\r?\n/).map((l) => l.trim()).filter(Boolean) : [];
}

/** Whether any advanced field holds a value (the page opens the section then). */
export function hasAdvanced(state) {
  return ADVANCED_FIELDS.some((f) => text(state.advanced?.[advancedId(f)]))
    || (state.retire?.deployments ?? []).some((d) => text(d.name) || text(d.uri))
    || typeof state.retire?.listed === 'boolean';
}

function blankValues(fields) {
  const o = {};
  // Checkboxes are three-valued: '' (unset, left out of the file), true, false.
  for (const f of fields) o[fieldId(f)] = '';
  return o;
}

/** A current master key of the given type, its fields empty (the local key's
 * reference defaults to file:master-key.txt). */
export function newSource(type = 'local') {
  const p = {};
  for (const t of SOURCE_TYPES) p[t] = blankValues(SOURCE_PROVIDERS[t].fields);
  p.local['cred.key'] = 'file:master-key.txt';
  return { type, name: '', p };
}

/** An empty retire row. */
export function newDeployment() {
  return { name: '', uri: '' };
}

/** A fresh state: the common case (a local key to AWS KMS), ready to fill in. */
export function defaultState() {
  const p = {};
  for (const tab of TABS) p[tab] = blankValues(PROVIDERS[tab].fields);
  const advanced = {};
  for (const f of ADVANCED_FIELDS) advanced[advancedId(f)] = '';
  return {
    v: 2,
    keyVault: { uri: 'env:MONGODB_URI', namespace: 'encryption.__keyVault' },
    sources: [newSource('local')],
    tab: 'aws',
    name: '',
    p,
    lang: 'python',
    stage: 'transition',
    advanced,
    retire: { deployments: [newDeployment()], listed: '' },
  };
}

/** A provider field's key inside `state.p[tab]`: `mk.region`, `cred.accessKeyId`. */
export function fieldId(f) {
  return `${f.at}.${f.key}`;
}

/** `type` or `type:name`. */
function providerName(type, name) {
  const n = (name ?? '').trim();
  return n ? `${type}:${n}` : type;
}

/** The target provider name: `aws`, or `aws:prod` when named. */
export function targetName(state) {
  return providerName(state.tab, state.name);
}

/** A current master key's provider name: `local`, `aws:legacy`. */
export function sourceName(src) {
  return providerName(src.type, src.name);
}

/** Whether a local current key is marked exposed (the plan rotates then). */
export function anyExposed(state) {
  return (state.sources ?? []).some((s) => s.type === 'local' && s.p?.local?.['cred.exposed'] === true);
}

/** JSON pointer (RFC 6901) segment escaping, as core does. */
export function seg(s) {
  return '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The segments of a JSON pointer. */
export function unpointer(path) {
  if (!path) return [];
  return path.split('/').slice(1).map((x) => x.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** The JSON pointer core reports for a target field. */
export function fieldPath(state, f) {
  const name = targetName(state);
  if (f.at === 'mk') return `/target/masterKey${seg(f.key)}`;
  if (f.at === 'tls') return `/tlsOptions${seg(name)}${seg(f.key)}`;
  return `/kmsProviders${seg(name)}${seg(f.key)}`;
}

/** The JSON pointer core reports for a current master key's field. */
export function sourceFieldPath(src, f) {
  const name = sourceName(src);
  if (f.at === 'tls') return `/tlsOptions${seg(name)}${seg(f.key)}`;
  return `/kmsProviders${seg(name)}${seg(f.key)}`;
}

/** The JSON pointer of a key vault field. */
export function keyVaultPath(key) {
  return `/keyVault${seg(key)}`;
}

function text(v) {
  return typeof v === 'string' ? v.trim() : '';
}

/** Sorts a provider's form values into kmsProviders (`cred`), tlsOptions (`tls`) and
 * masterKey (`mk`) objects, leaving out what is empty or unset. */
function collect(fields, values) {
  const out = { cred: {}, tls: {}, mk: {} };
  for (const f of fields) {
    const v = values?.[fieldId(f)];
    if (f.kind === 'checkbox') {
      if (v === true || v === false) out[f.at][f.key] = v;
    } else if (text(v)) {
      out[f.at][f.key] = text(v);
    }
  }
  return out;
}

/** Which current master keys the config holds: a source whose name is the target's,
 * or an earlier source's, cannot be written (a table has one entry per name); the
 * form says so (formDiagnostics). */
function writtenSources(state) {
  const target = targetName(state);
  const seen = new Set([target]);
  return (state.sources ?? []).map((src) => {
    const name = sourceName(src);
    const ok = !seen.has(name);
    seen.add(name);
    return ok;
  });
}

/** The keyshift.toml-shaped object for the state: empty fields are left out, so core
 * reports what is missing exactly as `keyshift check` would for the file. */
export function toConfig(state) {
  const kv = state.keyVault ?? {};
  const keyVault = {};
  if (text(kv.uri)) keyVault.uri = text(kv.uri);
  keyVault.namespace = text(kv.namespace) || 'encryption.__keyVault';
  const kmsProviders = {};
  const tlsOptions = {};
  const written = writtenSources(state);
  (state.sources ?? []).forEach((src, i) => {
    if (!written[i]) return;
    const name = sourceName(src);
    const { cred, tls } = collect(SOURCE_PROVIDERS[src.type].fields, src.p?.[src.type]);
    kmsProviders[name] = cred;
    if (Object.keys(tls).length) tlsOptions[name] = tls;
  });
  const name = targetName(state);
  const { cred, tls, mk } = collect(PROVIDERS[state.tab].fields, state.p?.[state.tab]);
  kmsProviders[name] = cred;
  if (Object.keys(tls).length) tlsOptions[name] = tls;
  const config = { keyVault, kmsProviders };
  if (Object.keys(tlsOptions).length) config.tlsOptions = tlsOptions;
  config.target = { provider: name, masterKey: mk };
  const rewrap = {};
  for (const f of ADVANCED_FIELDS.filter((x) => x.section === 'rewrap')) {
    const v = text(state.advanced?.[advancedId(f)]);
    if (!v) continue;
    // Digits go as a number; anything else as typed, so core reports its type.
    rewrap[f.key] = f.kind === 'integer' && /^[+-]?\d+$/.test(v) ? Number(v) : v;
  }
  if (Object.keys(rewrap).length) config.rewrap = rewrap;
  const audit = {};
  for (const f of ADVANCED_FIELDS.filter((x) => x.section === 'audit')) {
    const v = text(state.advanced?.[advancedId(f)]);
    if (v) audit[f.key] = v;
  }
  if (Object.keys(audit).length) config.audit = audit;
  const collections = collectionList(state.advanced?.['rotate.collections']);
  if (collections.length) config.rotate = { collections };
  const retire = {};
  const deployments = {};
  for (const d of state.retire?.deployments ?? []) {
    const n = text(d.name);
    const uri = text(d.uri);
    // A blank row is nothing; a repeated name is the form's to report.
    if ((!n && !uri) || Object.hasOwn(deployments, n)) continue;
    deployments[n] = uri;
  }
  if (Object.keys(deployments).length) retire.deployments = deployments;
  if (typeof state.retire?.listed === 'boolean') retire.allDeploymentsListed = state.retire.listed;
  if (Object.keys(retire).length) config.retire = retire;
  return config;
}

/** What the form itself must say, because keyshift.toml cannot even hold it: two
 * providers (current or target) with the same name, two retire deployments with the
 * same name. Diagnostics shaped like core's, with a `path` naming the form field
 * (`#source/I/name`, `#retire/I/name`). */
export function formDiagnostics(state) {
  const out = [];
  const target = targetName(state);
  const written = writtenSources(state);
  (state.sources ?? []).forEach((src, i) => {
    if (written[i]) return;
    const name = sourceName(src);
    const other = name === target ? 'the target' : 'another current master key';
    out.push({
      code: 'GUIDE-001',
      severity: 'error',
      path: `#source/${i}/name`,
      message: `This current master key and ${other} are both \`${name}\`: each provider needs a name of its own`,
      hint: `Give one of them a name, e.g. ${src.type}:legacy for the current key and ${state.tab}:prod for the target.`,
    });
  });
  const names = new Set();
  (state.retire?.deployments ?? []).forEach((d, i) => {
    const n = text(d.name);
    if (!n && !text(d.uri)) return;
    if (names.has(n)) {
      out.push({
        code: 'GUIDE-002',
        severity: 'error',
        path: `#retire/${i}/name`,
        message: `Two deployments are named \`${n}\`; only the first is written`,
        hint: 'Give each deployment a name of its own, or remove the repeated row.',
      });
    }
    names.add(n);
  });
  return out;
}

/** Where each diagnostic goes: the field whose path it names, else the nearest section
 * (by path prefix), else the summary. Returns `{byPath: Map(path → [diag]), rest: [diag]}`
 * for the given known paths (fields first, then sections). */
export function placeDiagnostics(diagnostics, fieldPaths, sectionPaths) {
  const byPath = new Map();
  const rest = [];
  const fields = new Set(fieldPaths);
  const sections = [...sectionPaths].sort((a, b) => b.length - a.length);
  for (const d of diagnostics) {
    let at = fields.has(d.path) ? d.path : undefined;
    if (at === undefined) at = sections.find((p) => d.path === p || d.path.startsWith(p + '/'));
    if (at === undefined) {
      rest.push(d);
      continue;
    }
    if (!byPath.has(at)) byPath.set(at, []);
    byPath.get(at).push(d);
  }
  return { byPath, rest };
}

/** Counts errors and warnings. */
export function summarize(diagnostics) {
  let errors = 0;
  let warnings = 0;
  for (const d of diagnostics) {
    if (d.severity === 'error') errors += 1;
    else warnings += 1;
  }
  return { errors, warnings };
}

/** Whether a value might be a literal secret rather than a reference or a plain
 * identifier: anything in a secret field that is not `env:`/`file:`; elsewhere PEM
 * blocks, access key ids, long base64 runs. Such values are never persisted. */
export function looksSecret(value, secretField) {
  if (typeof value !== 'string') return false;
  const v = value.trim();
  if (!v) return false;
  if (secretField) return !/^(env|file):\S+$/.test(v);
  if (/-----BEGIN/.test(v)) return true;
  if (/\b(AKIA|ASIA)[A-Z0-9]{16}\b/.test(v)) return true;
  if (/[A-Za-z0-9+/=_-]{40,}/.test(v) && !/[:.]/.test(v)) return true;
  if (/:\/\/[^/@\s]*:[^/@\s]*@/.test(v)) return true; // user:password@ in a URI
  return false;
}

/** Why a value outside the secret fields is certainly a secret (a PEM block, an AWS
 * access key id, a password in a URI), or null. Narrower than looksSecret: this one
 * holds back the whole file, so it must not fire on a long key name. */
export function unmistakableSecret(value) {
  if (typeof value !== 'string') return null;
  if (/-----BEGIN/.test(value)) return 'a PEM block (a private key or certificate)';
  if (/\b(AKIA|ASIA)[A-Z0-9]{16}\b/.test(value)) return 'an AWS access key id';
  if (/:\/\/[^/@\s]*:[^/@\s]*@/.test(value)) return 'a password in a URI';
  return null;
}

/** Suffixes of the variable a literal secret moves to, by provider type and field. */
const SECRET_VARIABLES = {
  aws: { accessKeyId: 'ACCESS_KEY_ID', secretAccessKey: 'SECRET_ACCESS_KEY', sessionToken: 'SESSION_TOKEN' },
  azure: { clientSecret: 'CLIENT_SECRET' },
  gcp: { privateKey: 'PRIVATE_KEY' },
  local: { key: 'MASTER_KEY' },
  kmip: {},
};

const envSafe = (s) => String(s).toUpperCase().replace(/[^A-Z0-9_]/g, '_');
const snake = (s) => envSafe(String(s).replace(/([a-z0-9])([A-Z])/g, '$1_$2'));

/** The environment variable the guide suggests for a secret at `path`: AWS's own names
 * for a plain `aws`, `AWS_LEGACY_…` for `aws:legacy`, MONGODB_URI for the key vault,
 * ORDERS_MONGODB_URI for a retire deployment `orders`. */
export function suggestedVariable(path) {
  const [a, b, c] = unpointer(path);
  if (a === 'keyVault') return 'MONGODB_URI';
  if (a === 'retire' && b === 'deployments') {
    const n = envSafe(c ?? '');
    return /^[A-Z_]/.test(n) ? `${n}_MONGODB_URI` : `DEPLOYMENT_${n}_MONGODB_URI`.replace(/__+/g, '_');
  }
  if ((a === 'kmsProviders' || a === 'tlsOptions') && b) {
    const [type, ...rest] = b.split(':');
    const prefix = [type, ...rest].map(envSafe).join('_');
    const suffix = c === 'tlsCertificateKeyFilePassword' ? 'KEY_PASSWORD' : (SECRET_VARIABLES[type]?.[c] ?? snake(c ?? 'SECRET'));
    return `${prefix}_${suffix}`;
  }
  return snake(unpointer(path).join('_')) || 'KEYSHIFT_SECRET';
}

function getAt(obj, parts) {
  let o = obj;
  for (const p of parts) {
    if (!o || typeof o !== 'object' || !Object.hasOwn(o, p)) return undefined;
    o = o[p];
  }
  return o;
}

function setAt(obj, parts, value) {
  let o = obj;
  for (const p of parts.slice(0, -1)) o = o[p];
  o[parts.at(-1)] = value;
}

/** Every string in a value, with its JSON pointer. */
function strings(value, path = '') {
  if (typeof value === 'string') return [[path, value]];
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => strings(v, `${path}${seg(k)}`));
  }
  return [];
}

/** The configuration as the guide may hand it out: never a literal secret.
 * - every value core calls a literal secret (KS-SEC-001), and every connection string
 *   that is neither a reference nor a mongodb:// URI (KS-KV-002), becomes an `env:`
 *   reference (`moved`: `{path, variable}`; the user exports the variable);
 * - a value elsewhere that is unmistakably a secret (unmistakableSecret) is replaced by
 *   REMOVED_SECRET and listed in `withheld` (`{path, why}`): the page then refuses to
 *   hand out keyshift.toml until the field is cleared.
 * The input is not changed. */
export function secretFree(config, diagnostics) {
  const out = structuredClone(config ?? {});
  const moved = [];
  const withheld = [];
  const taken = new Set(strings(out).map(([, v]) => /^env:(\w+)$/.exec(v)?.[1]).filter(Boolean));
  const done = new Set();
  for (const d of diagnostics ?? []) {
    const uriField = d.path === '/keyVault/uri' || d.path.startsWith('/retire/deployments/');
    if (!(d.code === 'KS-SEC-001' || (d.code === 'KS-KV-002' && uriField)) || done.has(d.path)) continue;
    const parts = unpointer(d.path);
    if (typeof getAt(out, parts) !== 'string') continue;
    done.add(d.path);
    const base = suggestedVariable(d.path);
    let variable = base;
    for (let n = 2; taken.has(variable); n += 1) variable = `${base}_${n}`;
    taken.add(variable);
    setAt(out, parts, `env:${variable}`);
    moved.push({ path: d.path, variable });
  }
  for (const [path, v] of strings(out)) {
    const why = unmistakableSecret(v);
    if (!why) continue;
    setAt(out, unpointer(path), 'REMOVED_SECRET');
    withheld.push({ path, why });
  }
  return { config: out, moved, withheld };
}

function keepString(v, secret) {
  return typeof v === 'string' && !looksSecret(v, secret);
}

function restoreValues(into, fields, stored) {
  for (const f of fields) {
    const v = stored?.[fieldId(f)];
    if (f.kind === 'checkbox') into[fieldId(f)] = v === true ? true : '';
    else if (keepString(v, f.secret)) into[fieldId(f)] = v;
  }
}

function persistValues(fields, values) {
  const out = {};
  for (const f of fields) {
    const v = values?.[fieldId(f)];
    if (f.kind === 'checkbox') out[fieldId(f)] = v === true;
    else if (keepString(v, f.secret)) out[fieldId(f)] = v;
  }
  return out;
}

/** The state as it may be stored (localStorage): every field that could be a literal
 * secret is left out, whatever the field. */
export function persistable(state) {
  const out = {
    v: 2, tab: state.tab, name: state.name, lang: state.lang, stage: state.stage,
    keyVault: {}, sources: [], p: {}, advanced: {}, retire: { deployments: [], listed: false },
  };
  for (const f of KEY_VAULT_FIELDS) {
    const v = state.keyVault?.[f.key];
    if (keepString(v, f.secret)) out.keyVault[f.key] = v;
  }
  for (const src of (state.sources ?? []).slice(0, MAX_SOURCES)) {
    const p = {};
    for (const t of SOURCE_TYPES) p[t] = persistValues(SOURCE_PROVIDERS[t].fields, src.p?.[t]);
    out.sources.push({ type: src.type, name: keepString(src.name, false) ? src.name : '', p });
  }
  for (const tab of TABS) out.p[tab] = persistValues(PROVIDERS[tab].fields, state.p?.[tab]);
  for (const f of ADVANCED_FIELDS) {
    const v = state.advanced?.[advancedId(f)];
    if (keepString(v, false)) out.advanced[advancedId(f)] = v;
  }
  for (const d of (state.retire?.deployments ?? []).slice(0, MAX_DEPLOYMENTS)) {
    out.retire.deployments.push({
      name: keepString(d.name, false) ? d.name : '',
      uri: keepString(d.uri, true) ? d.uri : '',
    });
  }
  out.retire.listed = state.retire?.listed === true;
  return out;
}

/** Rebuilds a state from stored data (this version's, or the first's, which had one
 * local key), taking only known fields of the right types. */
export function restore(stored) {
  const state = defaultState();
  if (!stored || typeof stored !== 'object' || (stored.v !== 1 && stored.v !== 2)) return state;
  if (TABS.includes(stored.tab)) state.tab = stored.tab;
  if (typeof stored.name === 'string') state.name = stored.name;
  if (LANGS.includes(stored.lang)) state.lang = stored.lang;
  if (STAGES.includes(stored.stage)) state.stage = stored.stage;
  const kv = stored.v === 1 ? stored.source : stored.keyVault;
  for (const f of KEY_VAULT_FIELDS) {
    const v = kv?.[f.key];
    if (keepString(v, f.secret)) state.keyVault[f.key] = v;
  }
  if (stored.v === 1) {
    const local = state.sources[0].p.local;
    const key = stored.source?.key;
    if (keepString(key, true)) local['cred.key'] = key;
    local['cred.exposed'] = stored.source?.exposed === true ? true : '';
  } else if (Array.isArray(stored.sources)) {
    state.sources = [];
    for (const s of stored.sources.slice(0, MAX_SOURCES)) {
      if (!s || !SOURCE_TYPES.includes(s.type)) continue;
      const src = newSource(s.type);
      if (keepString(s.name, false)) src.name = s.name;
      for (const t of SOURCE_TYPES) restoreValues(src.p[t], SOURCE_PROVIDERS[t].fields, s.p?.[t]);
      state.sources.push(src);
    }
  }
  for (const tab of TABS) restoreValues(state.p[tab], PROVIDERS[tab].fields, stored.p?.[tab]);
  for (const f of ADVANCED_FIELDS) {
    const v = stored.advanced?.[advancedId(f)];
    if (keepString(v, false)) state.advanced[advancedId(f)] = v;
  }
  const rows = Array.isArray(stored.retire?.deployments) ? stored.retire.deployments.slice(0, MAX_DEPLOYMENTS) : [];
  const deployments = rows.filter((d) => d && typeof d === 'object').map((d) => ({
    name: keepString(d.name, false) ? d.name : '',
    uri: keepString(d.uri, true) ? d.uri : '',
  }));
  state.retire.deployments = deployments.length ? deployments : [newDeployment()];
  state.retire.listed = stored.retire?.listed === true ? true : '';
  return state;
}

function fillValues(into, fields, sources) {
  for (const f of fields) {
    const v = sources[f.at]?.[f.key];
    if (f.kind === 'checkbox') into[fieldId(f)] = typeof v === 'boolean' ? v : '';
    else if (typeof v === 'string') into[fieldId(f)] = v;
    else into[fieldId(f)] = '';
  }
}

/** A state from a parsed keyshift.toml (core's `config`): the key vault, every current
 * master key (any type, named or not) with its credentials and TLS files, the target,
 * `[rewrap]`, `[rotate]` and `[retire]`. What the form cannot show (a provider of an
 * unknown type, a target that is a local key, TLS options of a local key or of no
 * provider, an empty collections list) is listed in `dropped` so the page can say so. */
export function fromConfig(config) {
  const state = defaultState();
  const dropped = [];
  const kv = config?.keyVault ?? {};
  state.keyVault.uri = typeof kv.uri === 'string' ? kv.uri : '';
  if (typeof kv.namespace === 'string') state.keyVault.namespace = kv.namespace;
  const providers = config?.kmsProviders ?? {};
  const tlsAll = config?.tlsOptions ?? {};
  const target = config?.target?.provider;
  const [type, ...rest] = typeof target === 'string' ? target.split(':') : [];
  const tlsKept = new Set();
  state.sources = [];
  for (const [n, p] of Object.entries(providers)) {
    if (n === target) continue;
    const [t, ...name] = n.split(':');
    if (!SOURCE_TYPES.includes(t)) {
      dropped.push(`kmsProviders.${n} (not a provider type: aws, azure, gcp, kmip or local)`);
      continue;
    }
    if (state.sources.length >= MAX_SOURCES) {
      dropped.push(`kmsProviders.${n} (more than ${MAX_SOURCES} current master keys)`);
      continue;
    }
    const src = newSource(t);
    src.name = name.join(':');
    fillValues(src.p[t], SOURCE_PROVIDERS[t].fields, { cred: p ?? {}, tls: tlsAll[n] ?? {} });
    if (t !== 'local') tlsKept.add(n);
    state.sources.push(src);
  }
  if (TABS.includes(type)) {
    state.tab = type;
    state.name = rest.join(':');
    fillValues(state.p[type], PROVIDERS[type].fields, {
      cred: providers[target] ?? {},
      tls: tlsAll[target] ?? {},
      mk: config?.target?.masterKey ?? {},
    });
    tlsKept.add(target);
  } else if (target !== undefined) {
    dropped.push(`the target ${target} (the guide moves keys to aws, azure, gcp or kmip)`);
    if (Object.hasOwn(providers, target)) dropped.push(`kmsProviders.${target}`);
  }
  for (const n of Object.keys(tlsAll)) {
    if (tlsKept.has(n)) continue;
    const why = n.split(':')[0] === 'local' && Object.hasOwn(providers, n)
      ? 'a local key makes no TLS connection'
      : 'no such provider';
    dropped.push(`tlsOptions.${n} (${why})`);
  }
  for (const f of ADVANCED_FIELDS.filter((x) => x.section === 'rewrap' || x.section === 'audit')) {
    const v = config?.[f.section]?.[f.key];
    if (typeof v === 'string' || typeof v === 'number') state.advanced[advancedId(f)] = String(v);
  }
  const collections = config?.rotate?.collections;
  if (Array.isArray(collections)) {
    state.advanced['rotate.collections'] = collections.map(String).join('\n');
    if (collections.length === 0) dropped.push('the empty [rotate] collections list (the guide leaves it out: --all-collections)');
  }
  const retire = config?.retire;
  if (retire && typeof retire === 'object') {
    const rows = Object.entries(retire.deployments ?? {})
      .filter(([, uri]) => typeof uri === 'string')
      .map(([name, uri]) => ({ name, uri }));
    if (rows.length) state.retire.deployments = rows;
    if (typeof retire.allDeploymentsListed === 'boolean') state.retire.listed = retire.allDeploymentsListed;
    if (!rows.length && typeof retire.allDeploymentsListed !== 'boolean') {
      dropped.push('the empty [retire] section');
    }
  }
  return { state, dropped };
}
