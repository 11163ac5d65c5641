// The guide's model: what the form holds, how it becomes a keyshift.toml-shaped
// object, where each diagnostic belongs, and what may be remembered across reloads.
// Pure functions only (no DOM, no wasm), so node tests exercise them as the page does.

/** Provider tabs, in MongoDB's own order. Each field: where it lives in the config
 * (`cred` → kmsProviders.NAME, `tls` → tlsOptions.NAME, `mk` → target.masterKey), its
 * label, short help, a placeholder, and whether it holds a secret reference. */
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

/** The "where you are now" fields. */
export const SOURCE_FIELDS = [
  { key: 'uri', label: 'Connection string', secret: true, placeholder: 'env:MONGODB_URI', help: 'A reference to the connection string of the cluster holding the key vault: env:NAME or file:PATH.' },
  { key: 'namespace', label: 'Key vault namespace', placeholder: 'encryption.__keyVault', help: 'db.collection of the key vault.' },
  { key: 'key', label: 'Local master key', secret: true, placeholder: 'file:master-key.txt', help: 'Where the application reads the 96-byte local key: file:PATH or env:NAME. Never the key itself.' },
];

/** The "Advanced" fields: the optional `[rewrap]` tuning and `[rotate]` collections.
 * `kind`: `integer` (sent as a number when it is digits, else as typed so core says
 * why), `list` (one `db.coll` per line, blank lines ignored), else text. */
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
    section: 'rotate', key: 'collections', kind: 'list', label: 'Collections to rotate (optional)', placeholder: 'app.customers\napp.orders',
    help: 'One db.coll per line: the collections holding encrypted fields, which keyshift rotate re-encrypts and whose $jsonSchema validators it rewrites. Empty: rotate scans every collection (--all-collections).',
  },
];

/** An advanced field's key inside `state.advanced`: `rewrap.batchSize`. */
export function advancedId(f) {
  return `${f.section}.${f.key}`;
}

/** The JSON pointer core reports for an advanced field (entries of a list add `/N`). */
export function advancedPath(f) {
  return `${seg(f.section)}${seg(f.key)}`;
}

/** The namespaces in the collections text: one per line, trimmed, blank lines left out. */
export function collectionList(textValue) {
  return typeof textValue === 'string' ? textValue.split(/\r?\n/).map((l) => l.trim()).filter(Boolean) : [];
}

/** Whether any advanced field holds a value (the page opens the section then). */
export function hasAdvanced(state) {
  return ADVANCED_FIELDS.some((f) => text(state.advanced?.[advancedId(f)]));
}

/** A fresh state: the common case, ready to fill in. */
export function defaultState() {
  const p = {};
  for (const tab of TABS) {
    p[tab] = {};
    for (const f of PROVIDERS[tab].fields) p[tab][fieldId(f)] = f.kind === 'checkbox' ? false : '';
  }
  const advanced = {};
  for (const f of ADVANCED_FIELDS) advanced[advancedId(f)] = '';
  return {
    v: 1,
    source: { uri: 'env:MONGODB_URI', namespace: 'encryption.__keyVault', key: 'file:master-key.txt', exposed: false },
    tab: 'aws',
    name: '',
    p,
    lang: 'python',
    stage: 'transition',
    advanced,
  };
}

/** A provider field's key inside `state.p[tab]`: `mk.region`, `cred.accessKeyId`. */
export function fieldId(f) {
  return `${f.at}.${f.key}`;
}

/** The target provider name: `aws`, or `aws:prod` when named. */
export function targetName(state) {
  const name = (state.name ?? '').trim();
  return name ? `${state.tab}:${name}` : state.tab;
}

/** JSON pointer (RFC 6901) segment escaping, as core does. */
function seg(s) {
  return '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1');
}

/** The JSON pointer core reports for a provider field. */
export function fieldPath(state, f) {
  const name = targetName(state);
  if (f.at === 'mk') return `/target/masterKey${seg(f.key)}`;
  if (f.at === 'tls') return `/tlsOptions${seg(name)}${seg(f.key)}`;
  return `/kmsProviders${seg(name)}${seg(f.key)}`;
}

/** The JSON pointer of a "where you are now" field. */
export function sourcePath(key) {
  if (key === 'key') return '/kmsProviders/local/key';
  if (key === 'exposed') return '/kmsProviders/local/exposed';
  return `/keyVault${seg(key)}`;
}

function text(v) {
  return typeof v === 'string' ? v.trim() : '';
}

/** The keyshift.toml-shaped object for the state: empty fields are left out, so core
 * reports what is missing exactly as `keyshift check` would for the file. */
export function toConfig(state) {
  const s = state.source ?? {};
  const name = targetName(state);
  const keyVault = {};
  if (text(s.uri)) keyVault.uri = text(s.uri);
  keyVault.namespace = text(s.namespace) || 'encryption.__keyVault';
  const local = {};
  if (text(s.key)) local.key = text(s.key);
  if (s.exposed) local.exposed = true;
  const cred = {};
  const tls = {};
  const mk = {};
  const values = state.p?.[state.tab] ?? {};
  for (const f of PROVIDERS[state.tab].fields) {
    const v = values[fieldId(f)];
    const into = f.at === 'cred' ? cred : f.at === 'tls' ? tls : mk;
    if (f.kind === 'checkbox') {
      if (v) into[f.key] = true;
    } else if (text(v)) {
      into[f.key] = text(v);
    }
  }
  const config = {
    keyVault,
    kmsProviders: { local, [name]: cred },
  };
  if (Object.keys(tls).length) config.tlsOptions = { [name]: tls };
  config.target = { provider: name, masterKey: mk };
  const rewrap = {};
  for (const f of ADVANCED_FIELDS.filter((x) => x.section === 'rewrap')) {
    const v = text(state.advanced?.[advancedId(f)]);
    if (!v) continue;
    // Digits go as a number; anything else as typed, so core reports its type.
    rewrap[f.key] = f.kind === 'integer' && /^[+-]?\d+$/.test(v) ? Number(v) : v;
  }
  if (Object.keys(rewrap).length) config.rewrap = rewrap;
  const collections = collectionList(state.advanced?.['rotate.collections']);
  if (collections.length) config.rotate = { collections };
  return config;
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

/** The state as it may be stored (localStorage): every field that could be a literal
 * secret is left out, whatever the field. */
export function persistable(state) {
  const out = { v: 1, tab: state.tab, name: state.name, lang: state.lang, stage: state.stage, source: {}, p: {}, advanced: {} };
  for (const f of SOURCE_FIELDS) {
    const v = state.source?.[f.key];
    if (typeof v === 'string' && !looksSecret(v, f.secret)) out.source[f.key] = v;
  }
  out.source.exposed = Boolean(state.source?.exposed);
  for (const tab of TABS) {
    out.p[tab] = {};
    for (const f of PROVIDERS[tab].fields) {
      const v = state.p?.[tab]?.[fieldId(f)];
      if (f.kind === 'checkbox') out.p[tab][fieldId(f)] = Boolean(v);
      else if (typeof v === 'string' && !looksSecret(v, f.secret)) out.p[tab][fieldId(f)] = v;
    }
  }
  for (const f of ADVANCED_FIELDS) {
    const v = state.advanced?.[advancedId(f)];
    if (typeof v === 'string' && !looksSecret(v, false)) out.advanced[advancedId(f)] = v;
  }
  return out;
}

/** Rebuilds a state from stored data, taking only known fields of the right types. */
export function restore(stored) {
  const state = defaultState();
  if (!stored || typeof stored !== 'object' || stored.v !== 1) return state;
  if (TABS.includes(stored.tab)) state.tab = stored.tab;
  if (typeof stored.name === 'string') state.name = stored.name;
  if (LANGS.includes(stored.lang)) state.lang = stored.lang;
  if (STAGES.includes(stored.stage)) state.stage = stored.stage;
  for (const f of SOURCE_FIELDS) {
    const v = stored.source?.[f.key];
    if (typeof v === 'string' && !looksSecret(v, f.secret)) state.source[f.key] = v;
  }
  state.source.exposed = Boolean(stored.source?.exposed);
  for (const tab of TABS) {
    for (const f of PROVIDERS[tab].fields) {
      const v = stored.p?.[tab]?.[fieldId(f)];
      if (f.kind === 'checkbox') state.p[tab][fieldId(f)] = Boolean(v);
      else if (typeof v === 'string' && !looksSecret(v, f.secret)) state.p[tab][fieldId(f)] = v;
    }
  }
  for (const f of ADVANCED_FIELDS) {
    const v = stored.advanced?.[advancedId(f)];
    if (typeof v === 'string' && !looksSecret(v, false)) state.advanced[advancedId(f)] = v;
  }
  return state;
}

/** A state from a parsed keyshift.toml (core's `config`): the first local source, the
 * target's provider, credentials, TLS files and master key, `[rewrap]` and `[rotate]`.
 * What the form cannot show (more sources, an empty collections list) is listed in
 * `dropped` so the page can say so. */
export function fromConfig(config) {
  const state = defaultState();
  const dropped = [];
  const kv = config?.keyVault ?? {};
  state.source.uri = typeof kv.uri === 'string' ? kv.uri : '';
  if (typeof kv.namespace === 'string') state.source.namespace = kv.namespace;
  const providers = config?.kmsProviders ?? {};
  const target = config?.target?.provider;
  const [type, ...rest] = typeof target === 'string' ? target.split(':') : [];
  const sources = Object.keys(providers).filter((n) => n !== target);
  const local = sources.find((n) => n === 'local') ?? sources.find((n) => n.startsWith('local:'));
  if (local) {
    state.source.key = typeof providers[local].key === 'string' ? providers[local].key : '';
    state.source.exposed = Boolean(providers[local].exposed);
  } else {
    state.source.key = '';
  }
  for (const n of sources) if (n !== local) dropped.push(`kmsProviders.${n}`);
  if (local && local !== 'local') dropped.push(`the source name ${local} (the guide writes "local")`);
  if (TABS.includes(type)) {
    state.tab = type;
    state.name = rest.join(':');
    const values = {
      cred: providers[target] ?? {},
      tls: config?.tlsOptions?.[target] ?? {},
      mk: config?.target?.masterKey ?? {},
    };
    for (const f of PROVIDERS[type].fields) {
      const v = values[f.at][f.key];
      if (f.kind === 'checkbox') state.p[type][fieldId(f)] = Boolean(v);
      else if (typeof v === 'string') state.p[type][fieldId(f)] = v;
    }
  } else if (target !== undefined) {
    dropped.push(`target ${target} (the guide moves keys to aws, azure, gcp or kmip)`);
  }
  for (const n of Object.keys(config?.tlsOptions ?? {})) if (n !== target) dropped.push(`tlsOptions.${n}`);
  for (const f of ADVANCED_FIELDS.filter((x) => x.section === 'rewrap')) {
    const v = config?.rewrap?.[f.key];
    if (typeof v === 'string' || typeof v === 'number') state.advanced[advancedId(f)] = String(v);
  }
  const collections = config?.rotate?.collections;
  if (Array.isArray(collections)) {
    state.advanced['rotate.collections'] = collections.map(String).join('\n');
    if (collections.length === 0) dropped.push('the empty [rotate] collections list (the guide leaves it out: --all-collections)');
  }
  return { state, dropped };
}
