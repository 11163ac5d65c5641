//! Python (PyMongo).
//!
//! API, from PyMongo's reference:
//! - `pymongo.encryption.ClientEncryption(kms_providers, key_vault_namespace,
//!   key_vault_client, codec_options, kms_tls_options=None)` and
//!   `ClientEncryption.create_data_key(kms_provider, master_key=None,
//!   key_alt_names=None)`: <https://pymongo.readthedocs.io/en/stable/api/pymongo/encryption.html>
//! - `pymongo.encryption_options.AutoEncryptionOpts(kms_providers, key_vault_namespace,
//!   ..., schema_map=..., bypass_auto_encryption=..., kms_tls_options=...,
//!   encrypted_fields_map=...)`:
//!   <https://pymongo.readthedocs.io/en/stable/api/pymongo/encryption_options.html>
//!
//! The merge point is `auto_encryption_opts(**app_options)`: the application passes
//! every option it passes today and gets them back with keyshift's KMS settings.

use super::{Lang, Setup, Source, notes, quote};

fn expr(s: &Source) -> String {
    match s {
        Source::Text(t) => quote(t),
        Source::Bool(b) => if *b { "True" } else { "False" }.to_string(),
        Source::Env(n) => format!("os.environ[{}]", quote(n)),
        Source::File(p) => format!("_read_text({})", quote(p)),
        Source::LocalKeyFile(p) => format!("_local_key(_read_bytes({}))", quote(p)),
        Source::LocalKeyEnv(n) => format!(
            "_local_key(os.environb[{}])",
            quote(n).replacen('"', "b\"", 1)
        ),
        Source::GcpKeyFile(p) => format!("_gcp_private_key(_read_text({}))", quote(p)),
        Source::GcpKeyEnv(n) => format!("_gcp_private_key(os.environ[{}])", quote(n)),
    }
}

fn dict(fields: &[(String, Source)], indent: &str) -> String {
    if fields.is_empty() {
        return "{}".to_string();
    }
    let mut out = String::from("{\n");
    for (k, v) in fields {
        out.push_str(&format!("{indent}    {}: {},\n", quote(k), expr(v)));
    }
    out.push_str(indent);
    out.push('}');
    out
}

/// Renders the Python module.
pub fn render(s: &Setup) -> String {
    let mut o = String::new();
    o.push_str(&notes::comment_block(s, Lang::Python, "#"));
    o.push_str("# API: https://pymongo.readthedocs.io/en/stable/api/pymongo/encryption.html\n");
    o.push_str(
        "#      https://pymongo.readthedocs.io/en/stable/api/pymongo/encryption_options.html\n",
    );
    o.push_str("import base64\nimport os\n\nfrom bson.binary import STANDARD\nfrom bson.codec_options import CodecOptions\nfrom pymongo import MongoClient\nfrom pymongo.encryption import ClientEncryption\nfrom pymongo.encryption_options import AutoEncryptionOpts\n\n");
    o.push_str("# ---- BEGIN keyshift KMS settings: merge into your AutoEncryptionOpts and ClientEncryption ----\n");
    o.push_str(&format!(
        "KEY_VAULT_NAMESPACE = {}\n\n\n",
        quote(&s.namespace)
    ));
    o.push_str(
        "def _read_bytes(path):\n    with open(path, \"rb\") as f:\n        return f.read()\n\n\n",
    );
    o.push_str("def _read_text(path):\n    return _read_bytes(path).decode().strip()\n\n\n");
    o.push_str("def _local_key(raw):\n    \"\"\"The local master key: 96 raw bytes, or their base64 text.\"\"\"\n    return raw if len(raw) == 96 else base64.b64decode(raw.strip())\n\n\n");
    o.push_str("def _gcp_private_key(text):\n    \"\"\"A GCP service account key as libmongocrypt wants it: the base64 of its DER.\n\n    PEM (what `gcloud iam service-accounts keys create` puts in its JSON) loses its\n    armour lines; base64 text is kept as it is.\n    \"\"\"\n    if \"-----BEGIN\" not in text:\n        return text.strip()\n    return \"\".join(line.strip() for line in text.splitlines() if not line.startswith(\"-----\"))\n\n\n");
    o.push_str("def kms_providers():\n    return {\n");
    for p in &s.providers {
        o.push_str(&format!(
            "        {}: {},\n",
            quote(&p.name),
            dict(&p.fields, "        ")
        ));
    }
    o.push_str("    }\n\n\n");
    o.push_str("def kms_tls_options():\n    return {\n");
    for p in s.providers.iter().filter(|p| !p.tls.is_empty()) {
        o.push_str(&format!(
            "        {}: {},\n",
            quote(&p.name),
            dict(&p.tls, "        ")
        ));
    }
    o.push_str("    }\n\n\n");
    o.push_str("def auto_encryption_opts(**app_options):\n    \"\"\"Your application's AutoEncryptionOpts with keyshift's KMS settings merged in.\n\n    Pass every other option exactly as your application passes it today: schema_map or\n    encrypted_fields_map, bypass_auto_encryption (only if it already sets it),\n    key_vault_client, crypt_shared_lib_path, mongocryptd_*. keyshift supplies only\n    kms_providers, key_vault_namespace and kms_tls_options.\n    \"\"\"\n");
    o.push_str("    return AutoEncryptionOpts(\n        kms_providers(),\n        KEY_VAULT_NAMESPACE,\n        kms_tls_options=kms_tls_options(),\n        **app_options,\n    )\n\n\n");
    o.push_str("def client_encryption(key_vault_client, codec_options=CodecOptions(uuid_representation=STANDARD)):\n    \"\"\"A ClientEncryption with the same KMS settings: new DEKs, explicit encrypt and decrypt.\"\"\"\n    return ClientEncryption(\n        kms_providers(),\n        KEY_VAULT_NAMESPACE,\n        key_vault_client,\n        codec_options,\n        kms_tls_options=kms_tls_options(),\n    )\n");
    o.push_str("# ---- END keyshift KMS settings ----\n\n\n");
    o.push_str(&format!("TARGET_PROVIDER = {}\n", quote(&s.target)));
    o.push_str(&format!(
        "TARGET_MASTER_KEY = {}\n\n\n",
        if s.master_key.is_empty() {
            "None".to_string()
        } else {
            dict(&s.master_key, "")
        }
    ));
    o.push_str("def create_data_key(client_encryption, key_alt_names=None):\n    \"\"\"A new DEK under the target master key; returns its _id.\"\"\"\n");
    o.push_str("    return client_encryption.create_data_key(\n        TARGET_PROVIDER, master_key=TARGET_MASTER_KEY, key_alt_names=key_alt_names\n    )\n\n\n");
    o.push_str(&format!(
        "def connection_string():\n    return {}\n\n\n",
        expr(&s.uri)
    ));
    o.push_str("def encrypted_client(*, schema_map, encrypted_fields_map=None, uri=None, **app_options):\n    \"\"\"A whole client with AUTOMATIC encryption, as an application that encrypts automatically has.\n\n    Fields your application's rules name are encrypted on every write and decrypted on\n    every read. keyshift does not know those rules, so they are required arguments:\n    pass your application's own schema_map (CSFLE) or encrypted_fields_map (Queryable\n    Encryption), or schema_map=None only if it relies on the server's $jsonSchema\n    validators. Pass its crypt_shared or mongocryptd options in app_options, as today.\n    An application that encrypts explicitly with ClientEncryption.encrypt and already sets\n    bypass_auto_encryption=True passes that in app_options too; nothing here sets it.\n    \"\"\"\n");
    o.push_str("    opts = auto_encryption_opts(\n        schema_map=schema_map, encrypted_fields_map=encrypted_fields_map, **app_options\n    )\n    return MongoClient(uri or connection_string(), auto_encryption_opts=opts)\n");
    o
}
